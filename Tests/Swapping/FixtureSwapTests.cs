using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Swapped;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Swapping;

/// <summary>
/// Real exported decoders, swapped to our operators, reproduce the fixture logits computed outside this project
/// (PyTorch), for the whole sequence at once and token by token with the state carried between calls.
/// </summary>
[TestFixture]
public class FixtureSwapTests
{
    public static IEnumerable<string> Fixtures() => ["gpt2-eager-dynamo", "llama-gqa-eager-dynamo", "llama-gqa-sdpa-dynamo18"];

    private static string Dir(string fixture) => Path.Combine(TestPaths.Shared, "fixtures", "exported-decoders", fixture);

    private static (long[] Ids, int Batch) Ids(string fixture)
    {
        var t = TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(Dir(fixture), "test_data", "input_ids.pb")));
        return (Tensors.ToInt64Array(t), (int)t.Dims[0]);
    }

    private static float[] Reference(string fixture, string name) =>
        Tensors.ToFloatArray(TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(Dir(fixture), "test_data", name + ".pb"))));

    private static void Check(string fixture, string rule, string logits, int chunk)
    {
        var model = ModelFile.Load(Path.Combine(Dir(fixture), "model.onnx"));
        var report = AttentionSwapper.Swap(model, AttentionRule.Parse(rule));
        Assert.That(report.Replaced, Has.Count.EqualTo(2), "both layers replaced");
        using var runner = new SwappedModelRunner(model, intraOpThreads: 1);
        var (ids, batch) = Ids(fixture);
        var got = runner.Logits(ids, batch, chunk);
        TensorAssert.Close(got, Reference(fixture, logits), Tolerance.Conformance, $"{fixture} {rule} chunk {chunk}");
    }

    [TestCaseSource(nameof(Fixtures))]
    public void Window16WholeSequence(string fixture) => Check(fixture, "window:16", "logits_window16", chunk: int.MaxValue);

    [TestCaseSource(nameof(Fixtures))]
    public void Window16TokenByToken(string fixture) => Check(fixture, "window:16", "logits_window16", chunk: 1);

    [TestCaseSource(nameof(Fixtures))]
    public void Window16InUnevenPieces(string fixture) => Check(fixture, "window:16", "logits_window16", chunk: 5);

    /// <summary>Memories that hold all 48 tokens are exact causal softmax: they must give the model's own logits.</summary>
    [TestCaseSource(nameof(Fixtures))]
    public void MemoriesLongerThanTheSequenceReproduceSoftmax(string fixture)
    {
        foreach (var rule in new[] { "window:48", "window:40,sinks=8", "segment:48", "hybrid:48,compress=linear", "hybrid:64,compress=mean" })
        {
            Check(fixture, rule, "logits_softmax", chunk: int.MaxValue);
            Check(fixture, rule, "logits_softmax", chunk: 1);
        }
    }

    /// <summary>The other memories have no outside reference here: they must at least agree with themselves in pieces.</summary>
    [TestCase("summary:cumulative")]
    [TestCase("summary:moving=8")]
    [TestCase("summary:ema=0.8")]
    [TestCase("segment:16")]
    [TestCase("hybrid:16,compress=linear")]
    [TestCase("hybrid:8,compress=mean")]
    [TestCase("window:8,sinks=4")]
    public void OtherMemoriesAgreeWholeAndTokenByToken(string rule)
    {
        const string fixture = "llama-gqa-eager-dynamo";
        var model = ModelFile.Load(Path.Combine(Dir(fixture), "model.onnx"));
        AttentionSwapper.Swap(model, AttentionRule.Parse(rule));
        using var runner = new SwappedModelRunner(model, intraOpThreads: 1);
        var (ids, batch) = Ids(fixture);
        var whole = runner.Logits(ids, batch, int.MaxValue);
        var stepwise = runner.Logits(ids, batch, 1);
        var pieces = runner.Logits(ids, batch, 7);
        TensorAssert.Close(stepwise, whole, Tolerance.Float32Logits, $"{rule}: token by token vs whole");
        TensorAssert.Close(pieces, whole, Tolerance.Float32Logits, $"{rule}: pieces of 7 vs whole");
        var softmax = Reference(fixture, "logits_softmax");
        Assert.That(whole.Zip(softmax, (a, b) => Math.Abs(a - b)).Max(), Is.GreaterThan(1e-3), $"{rule} should differ from full softmax on 48 tokens");
    }

    [TestCaseSource(nameof(Fixtures))]
    public void LinearEluWholeSequence(string fixture) => Check(fixture, "linear-elu", "logits_linear_elu", chunk: int.MaxValue);

    [TestCaseSource(nameof(Fixtures))]
    public void LinearEluTokenByToken(string fixture) => Check(fixture, "linear-elu", "logits_linear_elu", chunk: 1);

    [TestCaseSource(nameof(Fixtures))]
    public void LinearEluInUnevenPieces(string fixture) => Check(fixture, "linear-elu", "logits_linear_elu", chunk: 7);

    [TestCaseSource(nameof(Fixtures))]
    public void SoftmaxWholeSequence(string fixture) => Check(fixture, "softmax", "logits_softmax", chunk: int.MaxValue);

    [TestCaseSource(nameof(Fixtures))]
    public void SoftmaxTokenByToken(string fixture) => Check(fixture, "softmax", "logits_softmax", chunk: 1);

    [TestCaseSource(nameof(Fixtures))]
    public void SoftmaxInUnevenPieces(string fixture) => Check(fixture, "softmax", "logits_softmax", chunk: 7);
}
