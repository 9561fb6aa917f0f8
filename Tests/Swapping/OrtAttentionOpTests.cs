using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Swapping;

/// <summary>
/// The softmax rule hands attention to ORT's standard Attention operator (opset 23) with a growing KV cache. These
/// tests pin down, against the naive reference, the ORT behaviour the rule relies on: causal masking with a past is
/// aligned bottom-right (query i of the new chunk sees past + i + 1 keys), a zero-length past is accepted, softcap
/// comes before the causal mask, and present = past ++ new.
/// </summary>
[TestFixture]
public class OrtAttentionOpTests
{
    private const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;
    private const int B = 2, Hq = 4, Hkv = 2, D = 5, Dv = 3;

    private static ModelProto Model(bool causal, float softcap, bool withMask)
    {
        var attributes = new List<AttributeProto> { Attr.Int("is_causal", causal ? 1 : 0) };
        if (softcap > 0) attributes.Add(Attr.Float("softcap", softcap));
        return new ModelBuilder(defaultOpset: 23)
            .Input("q", F, B, Hq, "s", D).Input("k", F, B, Hkv, "s", D).Input("v", F, B, Hkv, "s", Dv)
            .Input("mask", F, "s", "t")
            .Input("past_k", F, B, Hkv, "p", D).Input("past_v", F, B, Hkv, "p", Dv)
            .Node("Attention", ["q", "k", "v", withMask ? "mask" : "", "past_k", "past_v"], ["y", "present_k", "present_v"], attributes: [.. attributes])
            .Output("y", F, B, Hq, "s", Dv).Output("present_k", F, B, Hkv, "t", D).Output("present_v", F, B, Hkv, "t", Dv)
            .Build();
    }

    /// <summary>Runs one chunk of <paramref name="len"/> queries after <paramref name="past"/> cached positions; checks y and present.</summary>
    private static void Check(int past, int len, bool causal, float softcap = 0, bool withMask = false)
    {
        var total = past + len;
        var allK = Seeded.Uniform(1, B * Hkv * total * D, -2, 2);
        var allV = Seeded.Uniform(2, B * Hkv * total * Dv);
        var q = Seeded.Uniform(3, B * Hq * len * D, -2, 2);
        var mask = withMask ? Seeded.Uniform(4, len * total, -3, 0) : new float[len * total];
        float[] Slice(float[] all, int dim, int from, int count)
        {
            var r = new float[B * Hkv * count * dim];
            for (var bh = 0; bh < B * Hkv; bh++) Array.Copy(all, (bh * total + from) * dim, r, bh * count * dim, count * dim);
            return r;
        }
        using var runner = new ModelRunner(Model(causal, softcap, withMask));
        var got = runner.Run(new Dictionary<string, FloatTensor>
        {
            ["q"] = FloatTensor.Of(q, B, Hq, len, D),
            ["k"] = FloatTensor.Of(Slice(allK, D, past, len), B, Hkv, len, D),
            ["v"] = FloatTensor.Of(Slice(allV, Dv, past, len), B, Hkv, len, Dv),
            ["mask"] = FloatTensor.Of(mask, len, total),
            ["past_k"] = FloatTensor.Of(Slice(allK, D, 0, past), B, Hkv, past, D),
            ["past_v"] = FloatTensor.Of(Slice(allV, Dv, 0, past), B, Hkv, past, Dv),
        }, "y", "present_k", "present_v");

        var want = SoftmaxAttentionReference.Compute(q, allK, allV, new(B, Hq, Hkv, len, total, D, Dv), 1 / Math.Sqrt(D), causal, softcap, withMask ? mask : null);
        TensorAssert.Close(got["y"].Data, want, Tolerance.Float32, $"y, past {past}, chunk {len}");
        Assert.That(got["present_k"].Shape, Is.EqualTo(new long[] { B, Hkv, total, D }));
        Assert.That(got["present_k"].Data, Is.EqualTo(allK), "present_k = past_k ++ k");
        Assert.That(got["present_v"].Data, Is.EqualTo(allV), "present_v = past_v ++ v");
    }

    [TestCase(4, 3)]
    [TestCase(6, 1)]
    [TestCase(1, 5)]
    public void CausalWithAPastIsAlignedBottomRight(int past, int len) => Check(past, len, causal: true);

    [TestCase(1)]
    [TestCase(4)]
    public void AZeroLengthPastIsAccepted(int len) => Check(0, len, causal: true);

    [Test]
    public void SoftcapComesBeforeTheCausalMask() => Check(3, 4, causal: true, softcap: 1.5f);

    [Test]
    public void AnAdditiveMaskCoversPastAndNewKeys() => Check(3, 2, causal: false, withMask: true);

    [Test]
    public void AnAdditiveMaskAndCausalCombine() => Check(3, 2, causal: true, withMask: true, softcap: 2f);
}
