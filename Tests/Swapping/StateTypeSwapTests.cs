using Google.Protobuf;
using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Host.Quality;
using OnnxAttention.Host.Swapped;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Swapping;

/// <summary>
/// Rules with their state kept in float16 or bfloat16 between calls (<c>RULE,state=float16</c>) on stories260K:
/// the spelling, the state's type and bytes, logits that follow the float32-state swap, and the same results whole,
/// token by token and in pieces.
/// </summary>
[TestFixture]
public class StateTypeSwapTests
{
    private const int Rows = 2, Seq = 40;

    private static long[] Ids => StoriesModel.Ids(5, Rows * Seq);

    public static readonly string[] Rules =
    [
        "window:8", "window:4,sinks=2", "hybrid:4,compress=mean", "hybrid:4,compress=linear", "segment:8", "summary:moving=4", "summary:ema=0.9", "linear-elu",
    ];

    private static IEnumerable<TestCaseData> RuleAndType() =>
        Rules.SelectMany(r => new[] { "float16", "bfloat16" }.Select(t => new TestCaseData(r, t)));

    [Test]
    public void TheStateTypeIsARuleOptionWithOneSpelling()
    {
        var rule = AttentionRule.Parse("Window:16, state=float16");
        Assert.That(rule, Is.EqualTo(new StateTypeRule(new WindowRule(16, 0), TensorProto.Types.DataType.Float16)));
        Assert.That(rule.Spelling, Is.EqualTo("window:16,state=float16"));
        Assert.That(AttentionRule.Parse("window:4,state=bfloat16,sinks=2").Spelling, Is.EqualTo("window:4,sinks=2,state=bfloat16"));
        Assert.That(AttentionRule.Parse("hybrid:8,compress=mean,state=float16"), Is.EqualTo(new StateTypeRule(new HybridRule(8, "mean"), TensorProto.Types.DataType.Float16)));
        Assert.That(AttentionRule.Parse("window:16,state=float32"), Is.EqualTo(new WindowRule(16, 0)), "float32 is the rule as it is");
        var layered = (LayeredRule)AttentionRule.Parse("window:8,state=float16@0;linear-elu,state=bfloat16@*");
        Assert.That(layered.Spelling, Is.EqualTo("window:8,state=float16@0;linear-elu,state=bfloat16@*"));
        Assert.That(AttentionRule.Parse(layered.Spelling), Is.EqualTo(layered), "the spelling parses back");
    }

    [TestCase("softmax,state=float16", "growing KV cache")]
    [TestCase("window:16,state=float8", "unknown state type 'float8'")]
    [TestCase("window:16,state=float16,state=bfloat16", "twice")]
    [TestCase("state=float16", "no rule")]
    [TestCase("linear-hedgehog:2,state=float16", "fitted by calibrate")]
    [TestCase("window:16,stat=float16", "unknown window option")]
    public void BadStateSpellingsAreRefused(string text, string why)
    {
        var e = Assert.Throws<FormatException>(() => AttentionRule.Parse(text));
        Assert.That(e!.Message, Does.Contain(why));
    }

    [TestCaseSource(nameof(RuleAndType))]
    public void HalfStateHalvesTheBytesAndFollowsTheFloat32State(string rule, string type)
    {
        var quality = StoriesModel.Quality;
        var (wide, wideReport) = quality.Swap(AttentionRule.Parse(rule));
        var (half, halfReport) = quality.Swap(AttentionRule.Parse($"{rule},state={type}"));
        var want = (TensorProto.Types.DataType)Enum.Parse(typeof(TensorProto.Types.DataType), type, ignoreCase: true);
        Assert.That(halfReport.State.Select(s => s.ElementType), Is.All.EqualTo(want));
        Assert.That(halfReport.Layers.Select(l => l.StateBytesPerSequence), Is.EqualTo(wideReport.Layers.Select(l => l.StateBytesPerSequence / 2)),
            "each layer's state bytes, from the real type");
        var contract = ModelContract.Read(half);
        Assert.That(contract.State.Select(s => s.ElementType), Is.All.EqualTo(want), "the recorded contract carries the state type");

        using var f32 = new SwappedModelRunner(wide, 1);
        using var f16 = new SwappedModelRunner(half, 1);
        var reference = f32.Logits(Ids, Rows, chunk: 1);
        var got = f16.Logits(Ids, Rows, chunk: 1);
        var scale = reference.Max(Math.Abs);
        TestContext.Out.WriteLine($"{rule} {type}: worst {got.Zip(reference, (a, b) => Math.Abs(a - b)).Max() / scale:G3} of the largest |logit|");
        TensorAssert.Close(got, reference, type == "float16" ? HalfStateLogits : BFloat16StateLogits, $"{rule} with {type} state, token by token");
    }

    [TestCaseSource(nameof(RuleAndType))]
    public void WholeTokenByTokenAndInPiecesAgree(string rule, string type)
    {
        var (half, _) = StoriesModel.Quality.Swap(AttentionRule.Parse($"{rule},state={type}"));
        using var runner = new SwappedModelRunner(half, 1);
        var whole = runner.Logits(Ids, Rows, chunk: Seq);
        var stepwise = runner.Logits(Ids, Rows, chunk: 1);
        var split = runner.Logits(Ids, Rows, chunk: 7);
        var scale = whole.Max(Math.Abs);
        TestContext.Out.WriteLine($"{rule} {type}: step {stepwise.Zip(whole, (a, b) => Math.Abs(a - b)).Max() / scale:G3} split {split.Zip(whole, (a, b) => Math.Abs(a - b)).Max() / scale:G3}");
        // A ring cache stores the rounded keys and values a single call used as they are, so the call pattern does
        // not matter; an accumulated memory (sums, averages) is rounded at each call's end, once per token when
        // decoding, so it drifts by the state type's rounding.
        var copies = rule.StartsWith("window:", StringComparison.Ordinal) || rule.StartsWith("segment:", StringComparison.Ordinal);
        var tolerance = copies ? Tolerance.Float32Logits : type == "float16" ? HalfStateLogits : BFloat16StateLogits;
        TensorAssert.Close(stepwise, whole, tolerance, "token by token");
        TensorAssert.Close(split, whole, tolerance, "in pieces of 7");
    }

    [TestCase("window:8,state=float16@0-1;linear-elu,state=bfloat16@*")]
    [TestCase("hybrid:4,compress=mean,state=float16")]
    public void TheGeneratorCarriesHalfStateOfASavedModel(string rule)
    {
        var (swapped, report) = StoriesModel.Quality.Swap(AttentionRule.Parse(rule));
        // As generate and eval load a converted or calibrated file: the rule as recorded, the state from the contract.
        using var decoder = DecoderModel.LoadSwapped(ModelProto.Parser.ParseFrom(swapped.ToByteArray()), intraOpThreads: 1);
        Assert.That(decoder.Report.Rule.Spelling, Is.EqualTo(report.Rule.Spelling));
        Assert.That(decoder.StateBytesPerSequence, Is.EqualTo(report.StateBytesPerSequence), "generate's state bytes, from the real type");
        int[] prompt = [1, 403, 407, 261, 378, 293];
        List<int> sequence;
        using (var g = new Generator(decoder, new GeneratorParams(MaxNewTokens: 12), [prompt]))
        {
            g.Prefill();
            while (!g.IsDone) g.GenerateNextToken();
            sequence = [.. g.Sequence(0)];
        }
        // Teacher-forced token by token on the generated sequence, each greedy token is the argmax of its position.
        using var runner = new SwappedModelRunner(swapped, 1);
        var ids = sequence.Select(t => (long)t).ToArray();
        var logits = runner.Logits(ids, 1, chunk: 1);
        var vocab = logits.Length / ids.Length;
        for (var p = prompt.Length; p < sequence.Count; p++)
        {
            var row = logits.AsSpan((p - 1) * vocab, vocab).ToArray();
            Assert.That(Array.IndexOf(row, row.Max()), Is.EqualTo(sequence[p]), $"position {p}");
        }
    }

    [Test]
    public void AFittedRuleKeepsItsStateInFloat16()
    {
        var quality = StoriesModel.Quality;
        var layer = AttentionTap.Capture(quality, Ids, Rows)[2];
        var fit = new FeatureMapFit(layer, 3, window: 0).Fit(steps: 3);
        var fitted = new FittedLinearRule(fit.Query, fit.Key);
        AttentionRule Plan(AttentionRule r) => new LayeredRule([new(r, [2]), new(new WindowRule(8, 0), null)]);
        var (wide, wideReport) = quality.Swap(Plan(fitted));
        var (half, halfReport) = quality.Swap(Plan(StateTypeRule.Of(fitted, TensorProto.Types.DataType.Float16)));
        Assert.That(halfReport.Layers[2].Rule.Spelling, Is.EqualTo("linear-hedgehog:3,state=float16"));
        Assert.That(halfReport.Layers[2].StateBytesPerSequence, Is.EqualTo(wideReport.Layers[2].StateBytesPerSequence / 2));
        using var f32 = new SwappedModelRunner(wide, 1);
        using var f16 = new SwappedModelRunner(half, 1);
        TensorAssert.Close(f16.Logits(Ids, Rows, chunk: 1), f32.Logits(Ids, Rows, chunk: 1), HalfStateLogits, "fitted maps, float16 state");
        using var decoder = DecoderModel.LoadSwapped(half, intraOpThreads: 1);
        Assert.That(decoder.Info.State.Where(s => s.Past.EndsWith(".2", StringComparison.Ordinal)).Select(s => s.ElementType),
            Is.All.EqualTo(TensorProto.Types.DataType.Float16), "a calibrated plan naming fitted rules loads as it is");
    }

    [Test]
    public void EndToEndTuningKeepsEachLayersStateType()
    {
        var checkpoint = OnnxAttention.Graphs.Llama2c.Llama2cCheckpoint.Load(Llama2c.LlamaGraphTests.CheckpointPath);
        AttentionRule[] rules = [.. Enumerable.Range(0, 5).Select(l => l % 2 == 0 ? AttentionRule.Parse("window:8,state=float16") : new WindowRule(4, 0))];
        Assert.That(rules.All(OnnxAttention.Host.Quality.Tuning.EndToEndModel.Supports), "a window with its state in float16 is tuned like the window");
        Assert.That(OnnxAttention.Host.Quality.Tuning.EndToEndModel.Supports(AttentionRule.Parse("linear-elu,state=float16")), Is.False);
        var model = new OnnxAttention.Host.Quality.Tuning.EndToEndModel(checkpoint, rules, projections: false);
        Assert.That(model.Rule.Spelling, Is.EqualTo("window:8,state=float16@0;window:4@1;window:8,state=float16@2;window:4@3;window:8,state=float16@4"));
    }

    /// <summary>
    /// Logits of a model whose state is rounded to float16 (u = 2^-11 relative) against the same model with float32
    /// state: keys and values rounded once, an accumulated memory once per call, five layers deep, through residuals
    /// and the classifier. Measured on stories260K, 40 tokens: worst 2.8e-3 of the largest |logit|.
    /// </summary>
    private static readonly Tolerance HalfStateLogits = new(1e-2, 1e-2);

    /// <summary>The same for bfloat16 (u = 2^-8, eight times float16's): measured worst 2.0e-2 of the largest |logit|.</summary>
    private static readonly Tolerance BFloat16StateLogits = new(5e-2, 5e-2);
}
