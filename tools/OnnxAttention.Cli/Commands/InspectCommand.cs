using System.CommandLine;
using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Cli.Commands;

/// <summary><c>onnx-attention inspect MODEL</c>: the attention found per layer, and why not where none was.</summary>
public static class InspectCommand
{
    public static Command Create()
    {
        var model = new Argument<FileInfo>("model") { Description = "an exported .onnx or a llama2.c .bin" };
        var command = new Command("inspect", "Show the attention found in a model, per layer, and why not where none was found.") { model };
        command.SetAction(parse =>
        {
            var path = parse.GetValue(model)!.FullName;
            try
            {
                var proto = ModelArguments.Load(path);
                if (proto.MetadataProps.FirstOrDefault(p => p.Key == ModelContract.RuleKey) is { } swapped)
                {
                    Console.WriteLine($"{path}: already swapped by OnnxAttention (rule {swapped.Value}); its attention runs on com.onnxattention operators");
                    return 0;
                }
                InputMetadata.RefuseOurKeys(proto);
                // What a session would refuse (or ORT abort on) is said here too, before anyone converts the model.
                ResourceChecks.Check(proto, SessionMemory.Budget);
                if (MergedDecoder.Collapse(proto) is { } merged) Console.WriteLine(merged);
                var graph = new Graph(proto.Graph);
                var findings = AttentionFinder.Find(graph, new ValueShapes(proto.Graph));
                Console.WriteLine($"{path}: {proto.Graph.Node.Count} nodes, opset {string.Join(", ", proto.OpsetImport.Select(o => $"{(o.Domain.Length == 0 ? "ai.onnx" : o.Domain)}:{o.Version}"))}");
                for (var i = 0; i < findings.Matches.Count; i++)
                {
                    var m = findings.Matches[i];
                    Console.WriteLine($"layer {i}: {m.Describe()} at {m.Anchor}");
                    foreach (var (rules, reason) in Refusals(m))
                    {
                        Console.WriteLine($"  {rules} would leave it as it is: {reason}");
                    }
                }
                foreach (var miss in findings.Misses)
                {
                    Console.WriteLine($"not attention we can replace: {miss.Anchor}: {miss.Reason}");
                }
                if (findings.Matches.Count == 0)
                {
                    Console.WriteLine(findings.Misses.Count == 0
                        ? "no attention found: the model has no Softmax-based attention and no attention operator"
                        : "no replaceable attention found (see the reasons above)");
                    return 2;
                }
                return 0;
            }
            catch (Exception e)
            {
                return CliErrors.Fail(e);
            }
        });
        return command;
    }

    /// <summary>Rule families sharing a verdict: softmax, linear-*, and the softmax-based memories (which refuse alike).</summary>
    private static readonly (string Rules, AttentionRule Sample)[] Families =
    [
        ("softmax", new SoftmaxRule()),
        ("linear-*", new LinearRule("elu_plus_one")),
        ("window, hybrid, segment, summary", new WindowRule(64, 0)),
    ];

    private static IEnumerable<(string Rules, string Reason)> Refusals(AttentionMatch m) =>
        Families.Select(f => (f.Rules, Reason: AttentionSwapper.Refusal(f.Sample, m))).Where(r => r.Reason is not null).Select(r => (r.Rules, r.Reason!));
}
