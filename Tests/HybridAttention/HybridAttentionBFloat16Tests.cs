using NUnit.Framework;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.HybridAttention;

/// <summary>bfloat16 query/key/value/output with float32 caches and compressed state, chosen by ORT from the input types.</summary>
[TestFixture]
public class HybridAttentionBFloat16Tests : BFloat16AttentionChecks<HybridAttentionCase, HybridState, HybridAttentionSession>
{
    public static IEnumerable<HybridAttentionCase> Cases()
    {
        yield return new HybridAttentionCase(2, 65, 4, 2, 64, 64, 16);
        yield return new HybridAttentionCase(1, 2, 2, 1, 128, 60, 5, "mean");
        yield return new HybridAttentionCase(2, 21, 4, 4, 1, 8, 5, History: 3);
        yield return new HybridAttentionCase(3, 1, 6, 3, 60, 1, 4, "mean", History: 9);
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesReferenceOnBFloat16RoundedInputs(HybridAttentionCase c) => CheckMatchesReferenceOnBFloat16RoundedInputs(c);

    [TestCaseSource(nameof(Cases))]
    public void PrefillEqualsTokenByTokenDecode(HybridAttentionCase c) => CheckPrefillEqualsTokenByTokenDecode(c);

    protected override HybridAttentionSession Open(HybridAttentionCase c) => new(c.Options, activation: BFloat16Type);

    protected override IStateOutputs<HybridState> Run(HybridAttentionSession session, HybridAttentionCase c, int seq, float[] q, float[] k,
        float[] v, HybridState state) => session.Run(c, seq, q, k, v, state);

    protected override double[] CheckStatesAgainstReference(HybridAttentionCase c, HybridState past, float[] q, float[] k, float[] v,
        IStateOutputs<HybridState> got)
    {
        var want = HybridAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv, q, k, v,
            past.Key, past.Value, past.Position, past.CompressedKey, past.CompressedValue);
        TensorAssert.Close(got.Present!.Key, want.Key, Tolerance.Float32, $"{c}: float32 key cache");
        // The compressed state is a float32 accumulation of bfloat16 inputs: rounding it would miss this tolerance.
        TensorAssert.Close(got.Present.CompressedKey, want.CompressedKey, Tolerance.Float32, $"{c}: float32 compressed key");
        TensorAssert.Close(got.Present.CompressedValue, want.CompressedValue, Tolerance.Float32, $"{c}: float32 compressed value");
        Assert.That(got.Present.Position, Is.EqualTo(want.Position), $"{c}: position");
        return want.Output;
    }

    protected override void CheckStatesAgree(HybridAttentionCase c, HybridState stepwise, HybridState whole)
    {
        Assert.That(stepwise.Key, Is.EqualTo(whole.Key), $"{c}: key cache (copied values, so exactly equal)");
        Assert.That(stepwise.Value, Is.EqualTo(whole.Value), $"{c}: value cache");
        Assert.That(stepwise.Position, Is.EqualTo(whole.Position), $"{c}: position");
        TensorAssert.Close(stepwise.CompressedKey, whole.CompressedKey, Tolerance.Float32Reordered, $"{c}: compressed key");
        TensorAssert.Close(stepwise.CompressedValue, whole.CompressedValue, Tolerance.Float32Reordered, $"{c}: compressed value");
    }
}
