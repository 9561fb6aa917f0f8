using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Swapping;

/// <summary>
/// Models written with ONNX's own Attention operator: a fixed-size memory replaces it where the maths allows
/// (causal self-attention, no other mask), and the softmax rule keeps its results while adding a KV cache that
/// carries a sequence across calls.
/// </summary>
[TestFixture]
public class OnnxAttentionOpSwapTests
{
    private const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;
    private const int B = 2, Hq = 4, Hkv = 2, D = 5, Dv = 3;

    /// <summary>Attention on 3-D packed [batch, seq, heads*dim] tensors, or 4-D [batch, heads, seq, dim] ones.</summary>
    private static ModelProto AttentionModel(bool packed, bool causal = true, bool mask = false, bool past = false, Dim? keyLength = null)
    {
        Dim t = "t";
        var kt = keyLength ?? t;
        var b = new ModelBuilder(defaultOpset: 23);
        if (packed)
        {
            b.Input("q", F, B, t, Hq * D).Input("k", F, B, kt, Hkv * D).Input("v", F, B, kt, Hkv * Dv).Output("y", F, B, t, Hq * Dv);
        }
        else
        {
            b.Input("q", F, B, Hq, t, D).Input("k", F, B, Hkv, kt, D).Input("v", F, B, Hkv, kt, Dv).Output("y", F, B, Hq, t, Dv);
        }
        if (mask) b.Input("mask", F, t, kt);
        if (past) b.Input("past_k", F, B, Hkv, "p", D).Input("past_v", F, B, Hkv, "p", Dv);
        var attributes = new List<AttributeProto> { Attr.Int("is_causal", causal ? 1 : 0) };
        if (packed) attributes.AddRange([Attr.Int("q_num_heads", Hq), Attr.Int("kv_num_heads", Hkv)]);
        return b.Node("Attention", ["q", "k", "v", mask ? "mask" : "", past ? "past_k" : "", past ? "past_v" : ""], ["y"], attributes: [.. attributes]).Build();
    }

    /// <summary>[B, S, H*d] to [B, H, S, d] (or back, with <paramref name="toPacked"/>).</summary>
    private static float[] Heads(float[] x, int seq, int heads, int dim, bool toPacked = false)
    {
        var r = new float[x.Length];
        for (var b = 0; b < B; b++)
            for (var s = 0; s < seq; s++)
                for (var h = 0; h < heads; h++)
                    for (var d = 0; d < dim; d++)
                    {
                        var packedAt = ((b * seq + s) * heads + h) * dim + d;
                        var headsAt = ((b * heads + h) * seq + s) * dim + d;
                        if (toPacked) r[packedAt] = x[headsAt];
                        else r[headsAt] = x[packedAt];
                    }
        return r;
    }

    [TestCase(true)]
    [TestCase(false)]
    public void LinearAttentionReplacesACausalAttentionOperator(bool packed)
    {
        const int seq = 9;
        var model = AttentionModel(packed);
        var report = AttentionSwapper.Swap(model, AttentionRule.Parse("linear-elu"));
        Assert.That(report.Replaced.Single().Pattern, Is.EqualTo("ONNX Attention operator"));
        Assert.That(model.Graph.Node.Any(n => n.OpType == "Attention"), Is.False);

        var q = Seeded.Uniform(1, B * seq * Hq * D);
        var k = Seeded.Uniform(2, B * seq * Hkv * D);
        var v = Seeded.Uniform(3, B * seq * Hkv * Dv);
        // The rule linear-elu: phi = elu + 1 on unscaled q and k, normalised, epsilon 1e-6.
        var attributes = new LinearAttentionAttributes(Hq, Hkv, FeatureMap.EluPlusOne, true, 1e-6f, 1f);
        var want = LinearAttentionReference.Run(attributes, B, seq, D, Dv, q, k, v);
        using var runner = new ModelRunner(model);
        var inputs = packed
            ? new Dictionary<string, FloatTensor> { ["q"] = FloatTensor.Of(q, B, seq, Hq * D), ["k"] = FloatTensor.Of(k, B, seq, Hkv * D), ["v"] = FloatTensor.Of(v, B, seq, Hkv * Dv) }
            : new Dictionary<string, FloatTensor>
            {
                ["q"] = FloatTensor.Of(Heads(q, seq, Hq, D), B, Hq, seq, D),
                ["k"] = FloatTensor.Of(Heads(k, seq, Hkv, D), B, Hkv, seq, D),
                ["v"] = FloatTensor.Of(Heads(v, seq, Hkv, Dv), B, Hkv, seq, Dv),
            };
        inputs["past_state.0"] = FloatTensor.Of(new float[B * Hkv * D * Dv], B, Hkv, D, Dv);
        inputs["past_normalizer.0"] = FloatTensor.Of(new float[B * Hkv * D], B, Hkv, D);
        var y = runner.Run(inputs, "y")["y"].Data;
        TensorAssert.Close(packed ? y : Heads(y, seq, Hq, Dv, toPacked: true), want.Output, Tolerance.Float32, packed ? "3-D" : "4-D");
    }

    [Test]
    public void AFixedSizeMemoryRefusesWhatItCannotKeep()
    {
        string Refusal(ModelProto m) => Assert.Throws<GraphException>(() => AttentionSwapper.Swap(m, AttentionRule.Parse("linear-elu")))!.Message;
        Assert.That(Refusal(AttentionModel(packed: true, mask: true)), Does.Contain("the mask reads the values of graph input 'mask'"));
        Assert.That(Refusal(AttentionModel(packed: true, causal: false)), Does.Contain("no causal mask: bidirectional attention"));
        Assert.That(Refusal(AttentionModel(packed: false, past: true)), Does.Contain("already keeps its own KV cache ('past_k')"));
        Assert.That(Refusal(AttentionModel(packed: false, keyLength: 6) is var cross ? Pin(cross, 4) : cross), Does.Contain("4 queries attend to 6 keys"));
    }

    /// <summary>Fixes the query length of a model built with a symbolic one.</summary>
    private static ModelProto Pin(ModelProto m, long queryLength)
    {
        foreach (var io in m.Graph.Input.Concat(m.Graph.Output))
        {
            foreach (var d in io.Type.TensorType.Shape.Dim.Where(d => d.DimParam == "t")) d.DimValue = queryLength;
        }
        return m;
    }

    [Test]
    public void TheSoftmaxRuleLeavesAnAttentionWithItsOwnCacheAlone()
    {
        var e = Assert.Throws<GraphException>(() => AttentionSwapper.Swap(AttentionModel(packed: false, past: true), new SoftmaxRule()));
        Assert.That(e!.Message, Does.Contain("already keeps its own KV cache ('past_k'); it is left as it is"));
    }

    [Test]
    public void SoftmaxRuleInPiecesEqualsTheOriginalOverTheWholeSequence()
    {
        const int seq = 8;
        int[] pieces = [3, 1, 4];
        var q = Seeded.Uniform(4, B * seq * Hq * D, -2, 2);
        var k = Seeded.Uniform(5, B * seq * Hkv * D, -2, 2);
        var v = Seeded.Uniform(6, B * seq * Hkv * Dv);
        float[] Rows(float[] x, int width, int from, int count)
        {
            var r = new float[B * count * width];
            for (var b = 0; b < B; b++) Array.Copy(x, (b * seq + from) * width, r, b * count * width, count * width);
            return r;
        }

        using var original = new ModelRunner(AttentionModel(packed: true));
        var want = original.Run(new Dictionary<string, FloatTensor>
        {
            ["q"] = FloatTensor.Of(q, B, seq, Hq * D),
            ["k"] = FloatTensor.Of(k, B, seq, Hkv * D),
            ["v"] = FloatTensor.Of(v, B, seq, Hkv * Dv),
        }, "y")["y"].Data;

        var model = AttentionModel(packed: true);
        var report = AttentionSwapper.Swap(model, new SoftmaxRule());
        Assert.That(report.OpsetChange, Is.Null, "already opset 23");
        Assert.That(report.State.Select(s => s.Past), Is.EqualTo(new[] { "past_key.0", "past_value.0" }));
        using var swapped = new ModelRunner(model);
        var pastK = FloatTensor.Of([], B, Hkv, 0, D);
        var pastV = FloatTensor.Of([], B, Hkv, 0, Dv);
        var got = new float[B * seq * Hq * Dv];
        var start = 0;
        foreach (var n in pieces)
        {
            var r = swapped.Run(new Dictionary<string, FloatTensor>
            {
                ["q"] = FloatTensor.Of(Rows(q, Hq * D, start, n), B, n, Hq * D),
                ["k"] = FloatTensor.Of(Rows(k, Hkv * D, start, n), B, n, Hkv * D),
                ["v"] = FloatTensor.Of(Rows(v, Hkv * Dv, start, n), B, n, Hkv * Dv),
                ["past_key.0"] = pastK,
                ["past_value.0"] = pastV,
            }, "y", "present_key.0", "present_value.0");
            for (var b = 0; b < B; b++) Array.Copy(r["y"].Data, b * n * Hq * Dv, got, (b * seq + start) * Hq * Dv, n * Hq * Dv);
            start += n;
            (pastK, pastV) = (r["present_key.0"], r["present_value.0"]);
            Assert.That(pastK.Shape, Is.EqualTo(new long[] { B, Hkv, start, D }), "the cache grows by the piece");
        }
        TensorAssert.Close(got, want, Tolerance.Float32Reordered, "pieces 3, 1, 4 vs whole");
    }

    [Test]
    public void RaisingTheOpsetIsReportedAndRefusedWhereAnOperatorChangedMeaning()
    {
        ModelProto Model(bool withGroupNorm)
        {
            var b = new ModelBuilder(defaultOpset: 18)
                .Input("q", F, "b", 2, "t", 4).Input("k", F, "b", 2, "t", 4).Input("v", F, "b", 2, "t", 4)
                .Initializer(Tensors.Float("s", [0.5f]))
                .Node("Transpose", ["k"], ["kt"], attributes: Attr.Ints("perm", 0, 1, 3, 2))
                .Node("MatMul", ["q", "kt"], ["scores"])
                .Node("Mul", ["scores", "s"], ["scaled"])
                .Node("Softmax", ["scaled"], ["p"], attributes: Attr.Int("axis", -1))
                .Node("MatMul", ["p", "v"], ["y"])
                .Output("y", F, "b", 2, "t", 4);
            if (withGroupNorm)
            {
                b.Input("x", F, 1, 4, 3).Initializer(Tensors.Float("gamma", [1f, 1f], 2)).Initializer(Tensors.Float("beta", [0f, 0f], 2))
                    .Node("GroupNormalization", ["x", "gamma", "beta"], ["n"], name: "norm", attributes: Attr.Int("num_groups", 2))
                    .Output("n", F, 1, 4, 3);
            }
            return b.Build();
        }

        var model = Model(withGroupNorm: false);
        var report = AttentionSwapper.Swap(model, new SoftmaxRule());
        Assert.That(report.OpsetChange, Is.EqualTo("default-domain opset raised from 18 to 23 (IR version 10 -> 11)"));
        Assert.That(model.OpsetImport.Single(o => o.Domain == "").Version, Is.EqualTo(23));
        var e = Assert.Throws<GraphException>(() => AttentionSwapper.Swap(Model(withGroupNorm: true), new SoftmaxRule()));
        Assert.That(e!.Message, Does.Contain("its GroupNormalization node 'norm' changed meaning at opset 21"));
    }
}
