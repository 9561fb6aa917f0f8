using System.CommandLine;
using Google.Protobuf;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Quality;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Host.Swapped;

namespace OnnxAttention.Cli.Commands;

/// <summary><c>onnx-attention logits --model MODEL [--attention RULE] --input-ids IDS.pb --out LOGITS.pb [--step-by-step]</c>.</summary>
public static class LogitsCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "the decoder: an exported .onnx or a llama2.c .bin; a model already swapped (convert, calibrate) runs as it is", Required = true };
        var rule = new Option<string?>("--attention") { Description = AttentionRule.Known + " (required unless the model is already swapped)" };
        var ids = new Option<FileInfo>("--input-ids") { Description = "ONNX TensorProto of int64 ids [batch, seq]", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "where to write float32 logits [batch, seq, vocab] as a TensorProto", Required = true };
        var maxMemory = new Option<string?>("--max-memory") { Description = "cap ONNX Runtime's CPU memory for the session (bytes, or 512M, 2G; at most 4G - 1); without it, a statically known tensor over 4 GiB is refused" };
        var stepByStep = new Option<bool>("--step-by-step") { Description = "feed one token per call, carrying the state" };
        var ep = new Option<string>("--ep") { Description = "execution provider: cpu, cuda or cuda:N (cuda needs the GPU build)", DefaultValueFactory = _ => "cpu" };
        var command = new Command("logits", "Swap a model's attention (or take an already swapped one), run it on ids and write the logits.") { model, rule, ids, output, stepByStep, ep, maxMemory };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            CliErrors.RefuseOverwritingAnInput("--out", parse.GetValue(output)!, parse.GetValue(model)!, parse.GetValue(ids)!);
            if (parse.GetValue(maxMemory) is { } cap) SessionMemory.Cap(SessionMemory.ParseSize(cap));
            var (proto, rules) = ModelArguments.Swapped(parse.GetValue(model)!.FullName, parse.GetValue(rule));
            var (values, batch, seq) = IdsFile.Read(parse.GetValue(ids)!.FullName, "--input-ids");
            IdsFile.CheckRange(values, seq, DeclaredVocab(proto), "--input-ids");
            using var runner = new SwappedModelRunner(proto, target: ExecutionTarget.Parse(parse.GetValue(ep)!));
            var step = parse.GetValue(stepByStep);
            var logits = runner.Logits(values, batch, step ? 1 : Math.Max(1, seq));
            var vocab = seq == 0 ? 0 : logits.Length / (batch * seq);
            var result = Tensors.Float("logits", logits, batch, seq, vocab);
            File.WriteAllBytes(parse.GetValue(output)!.FullName, result.ToByteArray());
            Console.WriteLine($"{rules}; {(step ? "token by token" : "whole sequence")}; " +
                              $"wrote logits [{batch}, {seq}, {vocab}] to {parse.GetValue(output)!.FullName}");
            return 0;
        }));
        return command;
    }

    private static long? DeclaredVocab(ModelProto swapped)
    {
        var logits = swapped.Graph.Output.FirstOrDefault(o => o.Name == ModelContract.Read(swapped).LogitsOutput)?.Type?.TensorType?.Shape?.Dim;
        return logits is { Count: 3 } && logits[2].HasDimValue ? logits[2].DimValue : null;
    }
}
