using NUnit.Framework;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SegmentAttention;

/// <summary>bfloat16 query/key/value/output with float32 memory and segment state, chosen by ORT from the input types.</summary>
[TestFixture]
public class SegmentAttentionBFloat16Tests : BFloat16AttentionChecks<SegmentAttentionCase, SegmentState, SegmentAttentionSession>
{
    public static IEnumerable<SegmentAttentionCase> Cases()
    {
        yield return new SegmentAttentionCase(2, 65, 4, 2, 64, 64, 16);
        yield return new SegmentAttentionCase(1, 2, 2, 1, 128, 60, 5);
        yield return new SegmentAttentionCase(2, 21, 4, 4, 1, 8, 5, History: 3);
        yield return new SegmentAttentionCase(3, 1, 6, 3, 60, 1, 4, History: 9);
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesReferenceOnBFloat16RoundedInputs(SegmentAttentionCase c) => CheckMatchesReferenceOnBFloat16RoundedInputs(c);

    [TestCaseSource(nameof(Cases))]
    public void PrefillEqualsTokenByTokenDecode(SegmentAttentionCase c) => CheckPrefillEqualsTokenByTokenDecode(c);

    protected override SegmentAttentionSession Open(SegmentAttentionCase c) => new(c.Options, activation: BFloat16Type);

    protected override IStateOutputs<SegmentState> Run(SegmentAttentionSession session, SegmentAttentionCase c, int seq, float[] q, float[] k,
        float[] v, SegmentState state) => session.Run(c, seq, q, k, v, state);

    protected override double[] CheckStatesAgainstReference(SegmentAttentionCase c, SegmentState past, float[] q, float[] k, float[] v,
        IStateOutputs<SegmentState> got)
    {
        var want = SegmentAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv, q, k, v,
            past.MemoryKey, past.MemoryValue, past.SegmentKey, past.SegmentValue, past.Position);
        // The memory is a float32 average of bfloat16 inputs: rounding it would miss this tolerance.
        TensorAssert.Close(got.Present!.MemoryKey, want.MemoryKey, Tolerance.Float32, $"{c}: float32 memory key");
        TensorAssert.Close(got.Present.MemoryValue, want.MemoryValue, Tolerance.Float32, $"{c}: float32 memory value");
        TensorAssert.Close(got.Present.SegmentKey, want.SegmentKey, Tolerance.Float32, $"{c}: segment key");
        Assert.That(got.Present.Position, Is.EqualTo(want.Position), $"{c}: position");
        return want.Output;
    }

    protected override void CheckStatesAgree(SegmentAttentionCase c, SegmentState stepwise, SegmentState whole)
    {
        TensorAssert.Close(stepwise.MemoryKey, whole.MemoryKey, Tolerance.Float32Reordered, $"{c}: memory key");
        TensorAssert.Close(stepwise.MemoryValue, whole.MemoryValue, Tolerance.Float32Reordered, $"{c}: memory value");
        Assert.That(stepwise.SegmentKey, Is.EqualTo(whole.SegmentKey), $"{c}: segment key (copied values, so exactly equal)");
        Assert.That(stepwise.SegmentValue, Is.EqualTo(whole.SegmentValue), $"{c}: segment value");
        Assert.That(stepwise.Position, Is.EqualTo(whole.Position), $"{c}: position");
    }
}
