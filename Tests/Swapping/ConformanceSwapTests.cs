using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Swapping;

/// <summary>
/// The ONNX 1.22.0 backend node tests for Attention (../shared/conformance): every case without a past KV cache,
/// fused (the Attention operator) and function-expanded (MatMul/Softmax and friends), swapped with the softmax
/// rule (which adds its own growing KV cache, fed empty here) reproduces the expected outputs within 1e-3. Each
/// case must be recognised: a swap that replaced nothing fails.
/// </summary>
[TestFixture]
public class ConformanceSwapTests
{
    /// <summary>Cases ORT (CPU, 1.31.1 and 1.32.0) cannot run even before swapping, with what it answered.</summary>
    private static readonly Dictionary<string, string> OrtCannotRun = new()
    {
        ["test_attention_4d_diff_heads_mask4d_padded_kv"] =
            "ORT 1.32.0 refuses the unswapped model: \"inconsistent total_sequence_length (between attn_mask and past_key and " +
            "past_value)\": its CPU Attention wants the opset-24 attn_mask [2,3,4,4] to span all 6 keys even with nonpad_kv_seqlen " +
            "(the _expanded copy of this case runs and passes)",
    };

    /// <summary>The nodes <paramref name="output"/> depends on.</summary>
    private static List<NodeProto> Upstream(GraphProto g, string output)
    {
        var producers = g.Node.SelectMany(n => n.Output.Select(o => (o, n))).ToDictionary(x => x.o, x => x.n);
        var seen = new HashSet<NodeProto>();
        var pending = new Stack<string>([output]);
        while (pending.Count > 0)
        {
            if (!producers.TryGetValue(pending.Pop(), out var node) || !seen.Add(node)) continue;
            foreach (var input in node.Input) pending.Push(input);
        }
        return [.. seen];
    }

    public static IEnumerable<TestCaseData> Cases() =>
        ConformanceCase.Names().Where(n => !n.Contains("past", StringComparison.Ordinal)).Select(n => new TestCaseData(n).SetName(n));

    /// <summary>
    /// The cases above come from the suite's listing in ../shared: a listing emptied or cut short, or a case folder
    /// missing, fails here instead of leaving fewer cases (or none) to pass.
    /// </summary>
    [Test]
    public void EveryListedCaseIsPresent()
    {
        var names = Cases().Select(c => (string)c.Arguments[0]!).ToList();
        Assert.That(names, Has.Count.EqualTo(90), "ONNX 1.22.0 Attention cases without a past KV cache");
        Assert.That(names.Where(n => !File.Exists(Path.Combine(ConformanceCase.Root, n, "model.onnx"))), Is.Empty, "cases without their model.onnx");
        Assert.That(names.Where(n => ConformanceCase.Load(n).Outputs().Count == 0), Is.Empty, "cases without an expected output");
    }

    [TestCaseSource(nameof(Cases))]
    public void SoftmaxSwapReproducesTheExpectedOutputs(string name)
    {
        var c = ConformanceCase.Load(name);
        var model = c.Model();
        var report = AttentionSwapper.Swap(model, new SoftmaxRule());
        Assert.That(report.Replaced, Has.Count.GreaterThanOrEqualTo(1), "the attention was recognised and replaced");
        Assert.That(report.Replaced[0].Pattern, Is.EqualTo(name.EndsWith("_expanded", StringComparison.Ordinal) ? "MatMul/Softmax attention" : "ONNX Attention operator"));
        var computingY = Upstream(model.Graph, model.Graph.Output[0].Name);
        Assert.That(computingY.Count(n => n.OpType == "Attention"), Is.EqualTo(1), "Y comes from one Attention node");
        Assert.That(computingY.Count(n => n.OpType == "Softmax"), Is.Zero, "no Softmax left on the way to Y");

        if (OrtCannotRun.TryGetValue(name, out var why))
        {
            // Keep the ignore honest: the unswapped model must still fail in ORT.
            Assert.That(() => c.Run(c.Model()), Throws.InstanceOf<Microsoft.ML.OnnxRuntime.OnnxRuntimeException>(), "ORT now runs the original; drop the ignore");
            Assert.Ignore(why);
        }

        var got = c.Run(model, report.State);
        var want = c.Outputs();
        for (var i = 0; i < want.Count; i++)
        {
            TensorAssert.Close(got[i], ConformanceCase.ToFloats(want[i]), Tolerance.Conformance, $"{name} output {i} ('{want[i].Name}')");
        }
    }
}
