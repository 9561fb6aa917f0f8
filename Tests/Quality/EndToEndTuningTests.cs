using NUnit.Framework;
using OnnxAttention.Graphs.Llama2c;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Quality;
using OnnxAttention.Host.Quality.Tuning;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Quality;

/// <summary>
/// The end-to-end stage: the training side's forward pass is the swapped ONNX model's (so tuned numbers carry over
/// exactly), its hand-written gradient is the loss's finite-difference slope, and tuning lowers the calibration KL.
/// </summary>
[TestFixture]
public class EndToEndTuningTests
{
    private static readonly Lazy<Llama2cCheckpoint> Checkpoint = new(() => Llama2cCheckpoint.Load(Llama2c.LlamaGraphTests.CheckpointPath));

    /// <summary>Seeded maps near the identity (a query dimension per projection), as a fit starts.</summary>
    private static FeatureProjection Map(int heads, int headDim, int m, int seed)
    {
        var noise = Seeded.Uniform(seed, heads * headDim * m + heads * m, -0.5f, 0.5f);
        var weight = new float[heads * headDim * m];
        for (var h = 0; h < heads; h++)
            for (var i = 0; i < headDim; i++)
                for (var j = 0; j < m; j++)
                    weight[(h * headDim + i) * m + j] = (j % headDim == i ? 1f : 0f) + noise[(h * headDim + i) * m + j];
        return new FeatureProjection(heads, headDim, m, weight, noise[(heads * headDim * m)..]);
    }

    /// <summary>Every kind of layer the training side computes, on stories260K's 8 query / 4 KV heads of 8.</summary>
    private static AttentionRule[] StoriesPlan() =>
    [
        new WindowRule(5, 0),
        new FittedLinearRule(Map(8, 8, 3, 1), Map(4, 8, 3, 2)),
        new FittedHybridRule(4, Map(8, 8, 2, 3), Map(4, 8, 2, 4), [.. Seeded.Uniform(5, 8, 0.05f, 2f)]),
        new WindowRule(6, 2),
        new SoftmaxRule(),
    ];

    /// <summary>The same kinds with their state in float16: keys and values rounded before the attention.</summary>
    private static AttentionRule[] HalfStatePlan() =>
    [
        .. StoriesPlan().Take(3).Select(r => StateTypeRule.Of(r, OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType.Float16)),
        new WindowRule(6, 2),
        new SoftmaxRule(),
    ];

    /// <summary>
    /// The same kinds with int8 caches: keys and values quantised per head vector before the attention. The fitted
    /// linear layer has no cache, so it keeps float16 state.
    /// </summary>
    private static AttentionRule[] Int8StatePlan() =>
    [
        .. StoriesPlan().Select(r => r switch
        {
            SoftmaxRule => r,
            FittedLinearRule => StateTypeRule.Of(r, OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType.Float16),
            _ => StateTypeRule.Of(r, OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType.Int8),
        }),
    ];

    private static LayeredRule Layered(IReadOnlyList<AttentionRule> rules) => new(rules.Select((r, l) => new LayeredRule.Entry(r, [l])).ToList());

    private static long[] Ids(int seed, int count, int vocab) => [.. Seeded.Uniform(seed, count, 0, vocab - 0.01f).Select(x => (long)x)];

    [TestCase(false)]
    [TestCase(true)]
    public void TheTrainingSidesLogitsAreTheSwappedOnnxModels(bool halfState)
    {
        const int rows = 2, seq = 40;
        var ids = Ids(7, rows * seq, 512);
        var plan = halfState ? HalfStatePlan() : StoriesPlan();
        var model = new EndToEndModel(Checkpoint.Value, plan, projections: false);
        var want = StoriesModel.QualityOnOrtThreads.Logits(Layered(plan), ids, rows);
        TensorAssert.Close(model.Logits(ids, rows), want, new Tolerance(2e-4, 2e-4), "training side vs ORT, swapped stories260K");
        Assert.That(model.Rule.Spelling, Is.EqualTo(Layered(plan).Spelling));
    }

    [Test]
    public void TheTrainingSidesLogitsAreTheSwappedOnnxModelsWithInt8State()
    {
        const int rows = 2, seq = 40;
        var ids = Ids(7, rows * seq, 512);
        var plan = Int8StatePlan();
        Assert.That(plan.All(EndToEndModel.Supports), "every int8 layer is tuned like its float32 rule");
        var model = new EndToEndModel(Checkpoint.Value, plan, projections: false);
        var want = StoriesModel.QualityOnOrtThreads.Logits(Layered(plan), ids, rows);
        var got = model.Logits(ids, rows);
        TestContext.Out.WriteLine($"int8 state: worst {got.Zip(want, (a, b) => Math.Abs(a - b)).Max():G3}");
        TensorAssert.Close(got, want, new Tolerance(2e-4, 2e-4), "training side vs ORT, swapped stories260K, int8 caches");
        Assert.That(model.Rule.Spelling, Is.EqualTo(Layered(plan).Spelling));
        var float32 = new EndToEndModel(Checkpoint.Value, StoriesPlan(), projections: false).Logits(ids, rows);
        Assert.That(float32.Zip(got).Max(z => Math.Abs(z.First - z.Second)), Is.GreaterThan(1e-3), "the int8 rounding did change the logits");
    }

    [Test]
    public void TunedProjectionsAreWrittenIntoTheOutputModel()
    {
        const int rows = 1, seq = 24;
        var ids = Ids(8, rows * seq, 512);
        var plan = StoriesPlan();
        var model = new EndToEndModel(Checkpoint.Value, plan, projections: true);
        var p = model.GetParameters();
        var noise = Seeded.Uniform(9, p.Length, -0.02f, 0.02f);
        for (var i = 0; i < p.Length; i++) p[i] += noise[i];
        model.SetParameters(p);
        var changed = new QualityModel(model.WithProjections(StoriesModel.QualityOnOrtThreads.Original));
        var want = changed.Logits(model.Rule, ids, rows);
        TensorAssert.Close(model.Logits(ids, rows), want, new Tolerance(2e-4, 2e-4), "training side vs ORT with changed maps and projections");
        var unchanged = StoriesModel.QualityOnOrtThreads.Logits(model.Rule, ids, rows);
        Assert.That(unchanged.Zip(want).Max(z => Math.Abs(z.First - z.Second)), Is.GreaterThan(1e-2), "the projections did change the model");
    }

    /// <summary>A random llama2.c model small enough for finite differences: dim 8, 2 layers, 2 query / 1 KV heads.</summary>
    private static Llama2cCheckpoint Tiny(int seed)
    {
        var c = new Llama2cConfig(8, 12, 3, 2, 1, 11, 16, SharedClassifier: true);
        var n = 0;
        float[] R(int count, float scale) => Seeded.Uniform(seed * 100 + n++, count, -scale, scale);
        float[][] L(int count, float scale) => Enumerable.Range(0, c.Layers).Select(_ => R(count, scale)).ToArray();
        var half = c.HeadSize / 2;
        var angles = Enumerable.Range(0, c.MaxSequence * half).Select(i => i / half * Math.Pow(10000, -2.0 * (i % half) / c.HeadSize)).ToArray();
        var embedding = R(c.Vocab * c.Dim, 1f);
        return new Llama2cCheckpoint
        {
            Config = c,
            TokenEmbedding = embedding,
            AttentionNorm = L(c.Dim, 0.5f).Select(a => a.Select(x => 1 + x).ToArray()).ToArray(),
            Wq = L(c.Dim * c.Dim, 0.6f),
            Wk = L(c.KvDim * c.Dim, 0.6f),
            Wv = L(c.KvDim * c.Dim, 0.6f),
            Wo = L(c.Dim * c.Dim, 0.6f),
            FfnNorm = L(c.Dim, 0.5f).Select(a => a.Select(x => 1 + x).ToArray()).ToArray(),
            W1 = L(c.HiddenDim * c.Dim, 0.5f),
            W2 = L(c.Dim * c.HiddenDim, 0.5f),
            W3 = L(c.HiddenDim * c.Dim, 0.5f),
            FinalNorm = R(c.Dim, 0.3f).Select(x => 1 + x).ToArray(),
            FreqCisReal = [.. angles.Select(a => (float)Math.Cos(a))],
            FreqCisImag = [.. angles.Select(a => (float)Math.Sin(a))],
            Classifier = embedding,
        };
    }

    private static AttentionRule[] TinyPlan() =>
    [
        new FittedHybridRule(3, Map(2, 4, 2, 11), Map(1, 4, 2, 12), [0.7f, 1.6f]),
        new FittedLinearRule(Map(2, 4, 3, 13), Map(1, 4, 3, 14)),
        new WindowRule(4, 1),
    ];

    [Test]
    public void TheGradientIsTheLossesFiniteDifferenceSlope()
    {
        const int rows = 2, seq = 12;
        var tiny = Tiny(1);
        var ids = Ids(21, rows * seq, 11);
        var teacher = EndToEndTuning.Probabilities([.. Seeded.Uniform(22, rows * seq * 11, -2f, 2f)], 11);
        var model = new EndToEndModel(tiny, TinyPlan(), projections: true);
        var p = model.GetParameters();
        var gradient = new float[p.Length];
        model.Loss(ids, rows, teacher, 0, gradient);
        double Loss(float[] at)
        {
            model.SetParameters(at);
            return model.Loss(ids, rows, teacher, 0, null).Kl;
        }
        double Slope(Func<int, float> direction, float h)
        {
            var plus = p.Select((v, i) => v + h * direction(i)).ToArray();
            var minus = p.Select((v, i) => v - h * direction(i)).ToArray();
            return (Loss(plus) - Loss(minus)) / (2 * h);
        }
        // Each parameter alone. The step is small because the hybrid's c (the window's largest score) switches keys
        // within steps of 1e-2 (a kink, where the slope jumps); float32 rounding stays well below the slopes checked.
        var largest = gradient.Max(Math.Abs);
        var checkedOnes = 0;
        for (var i = 0; i < p.Length; i++)
        {
            if (Math.Abs(gradient[i]) < 0.05 * largest) continue;
            var slope = Slope(j => j == i ? 1f : 0f, 5e-4f);
            Assert.That(gradient[i], Is.EqualTo(slope).Within(0.03 * Math.Abs(slope) + 2e-3 * largest), $"parameter {i}");
            checkedOnes++;
        }
        Assert.That(checkedOnes, Is.GreaterThan(40), "enough single parameters were large enough to check");
        // Random directions over all parameters at once: maps, mixes and projections of all three layers.
        for (var seed = 0; seed < 3; seed++)
        {
            var direction = Seeded.Uniform(30 + seed, p.Length);
            var want = Slope(i => direction[i], 5e-4f);
            var got = gradient.Select((g, i) => (double)g * direction[i]).Sum();
            Assert.That(got, Is.EqualTo(want).Within(0.02 * Math.Abs(want) + 1e-4), $"direction {seed}");
        }
    }

    [Test]
    public void TuningLowersTheCalibrationKl()
    {
        const int rows = 4, seq = 16;
        var tiny = Tiny(2);
        var ids = Ids(41, rows * seq, 11);
        var exact = new EndToEndModel(tiny, [new SoftmaxRule(), new SoftmaxRule(), new SoftmaxRule()], projections: false);
        var teacher = EndToEndTuning.Probabilities(exact.Logits(ids, rows), 11);
        var model = new EndToEndModel(tiny, TinyPlan(), projections: false);
        var result = EndToEndTuning.Tune(model, ids, rows, teacher, from: 8, steps: 60, rate: 3e-2f);
        Assert.That(result.LossBefore, Is.GreaterThan(1e-3), "the plan starts away from the original");
        Assert.That(result.LossAfter, Is.LessThan(0.7 * result.LossBefore), "tuning the maps and mixes lowers the KL");
        Assert.That(model.Loss(ids, rows, teacher, 8, null).Kl, Is.EqualTo(result.LossAfter).Within(1e-9), "the model keeps the best numbers");
        var withProjections = new EndToEndModel(tiny, TinyPlan(), projections: true);
        var more = EndToEndTuning.Tune(withProjections, ids, rows, teacher, from: 8, steps: 60, rate: 3e-2f);
        Assert.That(more.LossAfter, Is.LessThan(result.LossAfter), "tuning the projections too lowers it further");
    }

    [Test]
    public void RulesItCannotComputeAreRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => new EndToEndModel(Tiny(1), [new SoftmaxRule(), new LinearRule("elu_plus_one"), new SoftmaxRule()], projections: false));
        Assert.That(e!.Message, Does.Contain("layer 1").And.Contain("linear-elu"));
        Assert.That(EndToEndModel.Supports(new HybridRule(4, "mean")), Is.False);
        Assert.That(EndToEndModel.Supports(new WindowRule(4, 2)), Is.True);
        Assert.That(EndToEndModel.Supports(StateTypeRule.Of(new WindowRule(4, 0), OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType.Float16)), Is.True);
        Assert.That(EndToEndModel.Supports(StateTypeRule.Of(new WindowRule(4, 0), OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType.Bfloat16)), Is.False);
    }
}
