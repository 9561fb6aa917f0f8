using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Host.Quality;
using OnnxAttention.Host.Swapped;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.WindowAttention;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Swapping;

/// <summary>
/// Rules with their caches of keys and values kept as int8 vectors with a float16 scale each (<c>RULE,state=int8</c>):
/// the spelling and its refusals, the quantiser against its double-precision definition, a swapped window against the
/// reference window attention on reference-quantised keys and values, and on stories260K the state's types and bytes,
/// logits near the float32 state, and the same results whole, token by token, in pieces and in padded batches.
/// </summary>
[TestFixture]
public class Int8StateTests
{
    private const TensorProto.Types.DataType I8 = TensorProto.Types.DataType.Int8, F16 = TensorProto.Types.DataType.Float16;
    private const int Rows = 2, Seq = 40;

    private static long[] Ids => StoriesModel.Ids(5, Rows * Seq);

    /// <summary>Every rule kind that keeps a cache of keys and values.</summary>
    public static readonly string[] Rules =
    [
        "window:8", "window:4,sinks=2", "hybrid:4,compress=mean", "hybrid:4,compress=linear", "segment:8", "summary:moving=4",
    ];

    [Test]
    public void Int8IsAStateTypeSpelledLikeTheOthers()
    {
        var rule = AttentionRule.Parse("Window:16, state=INT8");
        Assert.That(rule, Is.EqualTo(new StateTypeRule(new WindowRule(16, 0), I8)));
        Assert.That(rule.Spelling, Is.EqualTo("window:16,state=int8"));
        var layered = (LayeredRule)AttentionRule.Parse("window:8,state=int8@0;hybrid:4,compress=mean,state=int8@1;linear-elu,state=float16@*");
        Assert.That(AttentionRule.Parse(layered.Spelling), Is.EqualTo(layered), "the spelling parses back");
        Assert.That(StateTypeRule.Expected, Is.EqualTo("float32, float16, bfloat16 or int8"));
    }

    [TestCase("linear-elu,state=int8", "keeps no cache of keys and values")]
    [TestCase("summary:ema=0.9,state=int8", "keeps no cache of keys and values")]
    [TestCase("summary:cumulative,state=int8", "keeps no cache of keys and values")]
    [TestCase("softmax,state=int8", "growing KV cache")]
    [TestCase("window:16,state=int4", "expected state=float32, state=float16, state=bfloat16 or state=int8")]
    [TestCase("window:16,state=int8,state=float16", "twice")]
    [TestCase("state=int8", "no rule")]
    [TestCase("window:16,keys=ids,state=int8", "keeps token ids")]
    [TestCase("window:16,keys=ids,state=float16", "keeps token ids")]
    public void BadInt8SpellingsAreRefused(string text, string why)
    {
        var e = Assert.Throws<FormatException>(() => AttentionRule.Parse(text));
        Assert.That(e!.Message, Does.Contain(why));
    }

    [Test]
    public void TheTrainingSidesQuantiserIsTheDefinitionAndIdempotent()
    {
        const int d = 8;
        var x = Seeded.Uniform(11, 64 * d, -3, 3);
        // Vectors that test the edges: zeros, tiny (below the smallest scale), huge (saturating), one spike.
        for (var i = 0; i < d; i++) (x[i], x[d + i], x[2 * d + i], x[3 * d + i]) = (0f, 1e-7f * (i - 3), 3e7f * (i - 4), i == 5 ? 40f : 1e-3f);
        var want = Int8VectorReference.RoundTrip(x, d);
        var got = (float[])x.Clone();
        for (var i = 0; i < got.Length; i += d) StateTypeRule.RoundToInt8(got.AsSpan(i, d));
        Assert.That(got, Is.EqualTo(want), "the training side's rounding is the reference's");
        Assert.That(Int8VectorReference.RoundTrip(want, d), Is.EqualTo(want), "requantising a dequantised vector gives it back (the reference)");
        var again = (float[])got.Clone();
        for (var i = 0; i < again.Length; i += d) StateTypeRule.RoundToInt8(again.AsSpan(i, d));
        Assert.That(again, Is.EqualTo(got), "and the training side's");
        var (codes, scale) = Int8VectorReference.Quantise(x.AsSpan(4 * d, d));
        Assert.That(codes.Max(Math.Abs), Is.EqualTo(127), "the largest value of a vector takes the largest code");
        Assert.That(Math.Abs(scale * 127 - x.AsSpan(4 * d, d).ToArray().Max(MathF.Abs)), Is.LessThan(1e-3 * scale * 127));
    }

    private const int B = 2, Hq = 4, Hkv = 2, D = 8, Dv = 6, T = 9, W = 4;

    /// <summary>Causal self-attention with ONNX's Attention-23 on packed [batch, seq, heads*dim] float32 tensors.</summary>
    private static ModelProto AttentionModel()
    {
        Dim t = "t";
        var b = new ModelBuilder(defaultOpset: 23);
        b.Input("q", TensorProto.Types.DataType.Float, B, t, Hq * D).Input("k", TensorProto.Types.DataType.Float, B, t, Hkv * D)
            .Input("v", TensorProto.Types.DataType.Float, B, t, Hkv * Dv).Output("y", TensorProto.Types.DataType.Float, B, t, Hq * Dv);
        return b.Node("Attention", ["q", "k", "v"], ["y"],
            attributes: [Attr.Int("is_causal", 1), Attr.Int("q_num_heads", Hq), Attr.Int("kv_num_heads", Hkv)]).Build();
    }

    /// <summary>
    /// The swapped window with int8 state is the reference window attention on the reference-quantised keys and values,
    /// its present caches are the reference caches quantised, and feeding them back token by token gives the same.
    /// </summary>
    [Test]
    public void AnInt8WindowIsTheReferenceWindowOnQuantisedKeysAndValues()
    {
        var model = AttentionModel();
        AttentionSwapper.Swap(model, AttentionRule.Parse($"window:{W},state=int8"));
        var inputs = model.Graph.Input.ToDictionary(i => i.Name, i => (TensorProto.Types.DataType)i.Type.TensorType.ElemType);
        Assert.That(inputs.Where(i => i.Key.StartsWith("past_", StringComparison.Ordinal) && i.Key != PositionOffset.InputName).Select(i => (i.Key, i.Value)),
            Is.EquivalentTo(new[] { ("past_key_cache.0", I8), ("past_key_cache.0.scale", F16), ("past_value_cache.0", I8), ("past_value_cache.0.scale", F16) }));

        var (q, k, v) = (Seeded.Uniform(1, B * T * Hq * D, -2, 2), Seeded.Uniform(2, B * T * Hkv * D, -2, 2), Seeded.Uniform(3, B * T * Hkv * Dv, -2, 2));
        var attributes = WindowAttentionAttributes.Validate(HeadAttributes.Validate(Hq, Hkv, (float)(1 / Math.Sqrt(D))), W, 0, 0f);
        var want = WindowAttentionReference.Run(attributes, B, T, D, Dv, q, Int8VectorReference.RoundTrip(k, D), Int8VectorReference.RoundTrip(v, Dv));

        using var runner = new TypedModelRunner(model);
        var whole = runner.Run(Feeds(q, k, v, T, 0, null), "y", "present_key_cache.0", "present_key_cache.0.scale", "present_value_cache.0", "present_value_cache.0.scale");
        TensorAssert.Close(whole["y"].Floats, want.Output, Tolerance.Float32, "window:4,state=int8 against the reference on quantised keys and values");
        TensorAssert.Close(Dequantised(whole, "key_cache", D), want.KeyCache.Select(x => (float)x).ToArray(), Tolerance.Float32, "the present key cache");
        TensorAssert.Close(Dequantised(whole, "value_cache", Dv), want.ValueCache.Select(x => (float)x).ToArray(), Tolerance.Float32, "the present value cache");

        Dictionary<string, TypedTensor>? state = null;
        var stepwise = new float[whole["y"].Floats.Length];
        for (var t = 0; t < T; t++)
        {
            var step = runner.Run(Feeds(Slice(q, t, Hq * D), Slice(k, t, Hkv * D), Slice(v, t, Hkv * Dv), 1, t, state),
                "y", "present_key_cache.0", "present_key_cache.0.scale", "present_value_cache.0", "present_value_cache.0.scale");
            for (var b = 0; b < B; b++) step["y"].Floats.AsSpan(b * Hq * Dv, Hq * Dv).CopyTo(stepwise.AsSpan((b * T + t) * Hq * Dv));
            state = step;
        }
        Assert.That(stepwise, Is.EqualTo(whole["y"].Floats), "token by token, through the int8 caches, exactly as whole");
        foreach (var name in new[] { "present_key_cache.0", "present_key_cache.0.scale", "present_value_cache.0", "present_value_cache.0.scale" })
        {
            Assert.That(state![name].Data, Is.EqualTo(whole[name].Data), $"{name}: the same bytes");
        }
    }

    private static float[] Slice(float[] x, int t, int width)
    {
        var piece = new float[B * width];
        for (var b = 0; b < B; b++) x.AsSpan((b * T + t) * width, width).CopyTo(piece.AsSpan(b * width));
        return piece;
    }

    private static float[] Dequantised(Dictionary<string, TypedTensor> outputs, string name, int d)
    {
        var codes = (sbyte[])outputs[$"present_{name}.0"].Data;
        var scales = (Float16[])outputs[$"present_{name}.0.scale"].Data;
        return [.. codes.Select((c, i) => c * (float)BitConverter.UInt16BitsToHalf(scales[i / d].value))];
    }

    private static Dictionary<string, TypedTensor> Feeds(float[] q, float[] k, float[] v, int seq, long position, Dictionary<string, TypedTensor>? past)
    {
        TypedTensor Past(string name, int d) => past is null ? Zeros(name.EndsWith(".scale", StringComparison.Ordinal), d) : past[name.Replace("past_", "present_", StringComparison.Ordinal)];
        TypedTensor Zeros(bool scale, int d) => scale ? TypedTensor.Of(new Float16[B * Hkv * W], B, Hkv, W, 1) : new TypedTensor(new sbyte[B * Hkv * W * d], [B, Hkv, W, d]);
        return new Dictionary<string, TypedTensor>
        {
            ["q"] = TypedTensor.Of(q, B, seq, Hq * D),
            ["k"] = TypedTensor.Of(k, B, seq, Hkv * D),
            ["v"] = TypedTensor.Of(v, B, seq, Hkv * Dv),
            [PositionOffset.InputName] = TypedTensor.Of(Enumerable.Repeat(position, B).ToArray(), B),
            ["past_key_cache.0"] = Past("past_key_cache.0", D),
            ["past_key_cache.0.scale"] = Past("past_key_cache.0.scale", D),
            ["past_value_cache.0"] = Past("past_value_cache.0", Dv),
            ["past_value_cache.0.scale"] = Past("past_value_cache.0.scale", Dv),
        };
    }

    [TestCaseSource(nameof(Rules))]
    public void Int8CachesTakeOneBytePerValueAndFollowTheFloat32State(string rule)
    {
        var quality = StoriesModel.Quality;
        var (wide, wideReport) = quality.Swap(AttentionRule.Parse(rule));
        var (narrow, report) = quality.Swap(AttentionRule.Parse($"{rule},state=int8"));
        // A cache [.., rows, d] becomes int8 codes and float16 scales [.., rows, 1]; any other state float16.
        var expected = wideReport.State.SelectMany(s => s.TokenRows
            ? new[] { (s.Past, I8, s.BytesPerRow(0) / 4), (s.Past + ".scale", F16, s.BytesPerRow(0) / 4 / s.Shape[^1].Value!.Value * 2) }
            : [(s.Past, F16, s.BytesPerRow(0) / 2)]);
        Assert.That(report.State.Select(s => (s.Past, s.ElementType, s.BytesPerRow(0))), Is.EqualTo(expected));
        Assert.That(report.StateBytesPerSequence, Is.EqualTo(expected.Sum(e => e.Item3)));
        var contract = ModelContract.Read(narrow);
        Assert.That(contract.State.Select(s => (s.Past, s.ElementType, s.BytesPerRow)), Is.EqualTo(expected), "the recorded contract");
        if (rule == "window:8")
        {
            // stories260K: 5 layers, 4 KV heads of 8: 2 * 4 * (8 + 2) bytes per cached token per layer.
            Assert.That(report.StateBytesPerSequence, Is.EqualTo(5 * 8 * 2 * 4 * (8 + 2)));
        }

        using var f32 = new SwappedModelRunner(wide, 1);
        using var i8 = new SwappedModelRunner(narrow, 1);
        var reference = f32.Logits(Ids, Rows, chunk: 1);
        var got = i8.Logits(Ids, Rows, chunk: 1);
        var scale = reference.Max(Math.Abs);
        TestContext.Out.WriteLine($"{rule} int8: worst {got.Zip(reference, (a, b) => Math.Abs(a - b)).Max() / scale:G3} of the largest |logit|");
        TensorAssert.Close(got, reference, Int8StateLogits, $"{rule} with int8 state, token by token");
    }

    [TestCaseSource(nameof(Rules))]
    public void WholeTokenByTokenAndInPiecesAgree(string rule)
    {
        var (narrow, _) = StoriesModel.Quality.Swap(AttentionRule.Parse($"{rule},state=int8"));
        using var runner = new SwappedModelRunner(narrow, 1);
        var whole = runner.Logits(Ids, Rows, chunk: Seq);
        var stepwise = runner.Logits(Ids, Rows, chunk: 1);
        var split = runner.Logits(Ids, Rows, chunk: 7);
        var scale = whole.Max(Math.Abs);
        TestContext.Out.WriteLine($"{rule} int8: step {stepwise.Zip(whole, (a, b) => Math.Abs(a - b)).Max() / scale:G3} split {split.Zip(whole, (a, b) => Math.Abs(a - b)).Max() / scale:G3}");
        // Caches store exactly the quantised keys and values one call used; the hybrids' sums and summary slots are
        // float16, rounded at each call's end.
        var copies = rule.StartsWith("window:", StringComparison.Ordinal) || rule.StartsWith("segment:", StringComparison.Ordinal);
        var tolerance = copies ? Tolerance.Float32Logits : HalfStateLogits;
        TensorAssert.Close(stepwise, whole, tolerance, "token by token");
        TensorAssert.Close(split, whole, tolerance, "in pieces of 7");
    }

    [TestCase("window:8,state=int8@0-1;hybrid:4,compress=mean,state=int8@*")]
    [TestCase("segment:4,state=int8")]
    public void TheGeneratorCarriesInt8StateInPaddedBatches(string rule)
    {
        var (swapped, report) = StoriesModel.Quality.Swap(AttentionRule.Parse(rule));
        using var decoder = DecoderModel.LoadSwapped(ModelProto.Parser.ParseFrom(swapped.ToByteArray()), intraOpThreads: 1);
        Assert.That(decoder.StateBytesPerSequence, Is.EqualTo(report.StateBytesPerSequence), "generate's state bytes, from the real types");
        int[][] prompts = [[1, 403, 407, 261, 378, 293], [1, 320, 284]];
        List<int> Generate(int[][] batch, int row)
        {
            using var g = new Generator(decoder, new GeneratorParams(MaxNewTokens: 12), batch);
            g.Prefill();
            while (!g.IsDone) g.GenerateNextToken();
            return [.. g.Sequence(row)];
        }
        // A row of a padded batch generates what it generates alone (the short prompt is padded).
        Assert.That(Generate(prompts, 0), Is.EqualTo(Generate([prompts[0]], 0)), "the long row");
        Assert.That(Generate(prompts, 1), Is.EqualTo(Generate([prompts[1]], 0)), "the short, padded row");

        // Teacher-forced token by token on the generated sequence, each greedy token is the argmax of its position.
        var sequence = Generate([prompts[0]], 0);
        using var runner = new SwappedModelRunner(swapped, 1);
        var ids = sequence.Select(t => (long)t).ToArray();
        var logits = runner.Logits(ids, 1, chunk: 1);
        var vocab = logits.Length / ids.Length;
        for (var p = prompts[0].Length; p < sequence.Count; p++)
        {
            var row = logits.AsSpan((p - 1) * vocab, vocab).ToArray();
            Assert.That(Array.IndexOf(row, row.Max()), Is.EqualTo(sequence[p]), $"position {p}");
        }
    }

    [Test]
    public void AGenaiFolderOfAnInt8SwapIsRefusedWithTheReason()
    {
        var (swapped, _) = StoriesModel.Quality.Swap(AttentionRule.Parse("window:4,state=int8"));
        var e = Assert.Throws<OnnxAttention.Graphs.Ir.GraphException>(() => GenaiInterface.Apply(swapped));
        Assert.That(e!.Message, Does.Contain("state=int8").And.Contain("state=float16"));
        var (half, _) = StoriesModel.Quality.Swap(AttentionRule.Parse("window:4,state=float16"));
        Assert.That(GenaiInterface.Apply(half), Does.Contain("fixed-length KV cache"), "a float16 window still goes");
    }

    [Test]
    public void CandidatesInInt8LeaveOutTheRulesWithoutACache()
    {
        AttentionRule[] candidates = [new WindowRule(4, 0), new HybridRule(4, "mean"), new LinearRule("elu_plus_one")];
        var i8 = PlanSearch.InStateTypes(candidates, [I8]);
        Assert.That(i8.Select(r => r.Spelling), Is.EqualTo(new[] { "window:4,state=int8", "hybrid:4,compress=mean,state=int8" }));
        var both = PlanSearch.InStateTypes(candidates, [F16, I8]);
        Assert.That(both, Has.Count.EqualTo(5), "linear attention is still offered in float16");
    }

    /// <summary>
    /// Logits of a model whose caches are int8 per vector (an error up to 1/254 of each vector's largest value) against
    /// the same model with float32 state, five layers deep, on random ids: measured on stories260K, 40 tokens, worst
    /// 2.8e-2 (window:8) to 4.4e-2 (segment:8) of the largest |logit|.
    /// </summary>
    private static readonly Tolerance Int8StateLogits = new(1e-1, 1e-1);

    /// <summary>
    /// Token by token or in pieces against whole, for the float16 sums and slots of an int8 rule (rounded at each call's
    /// end): measured worst 8.6e-3 of the largest |logit| (hybrid:4,compress=mean token by token).
    /// </summary>
    private static readonly Tolerance HalfStateLogits = new(2e-2, 2e-2);
}
