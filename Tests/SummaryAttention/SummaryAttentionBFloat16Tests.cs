using NUnit.Framework;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SummaryAttention;

/// <summary>bfloat16 query/key/value/output with float32 summaries: the same op name, chosen by ORT from the input types.</summary>
[TestFixture]
public class SummaryAttentionBFloat16Tests : BFloat16AttentionChecks<SummaryAttentionCase, SummaryState, SummaryAttentionSession>
{
    public static IEnumerable<SummaryAttentionCase> Cases()
    {
        yield return new SummaryAttentionCase(2, 65, 4, 2, 64, 64);
        yield return new SummaryAttentionCase(1, 2, 2, 1, 128, 60, "ema", Alpha: 0.8f, NumSlots: 2);
        yield return new SummaryAttentionCase(2, 21, 4, 4, 1, 8, "moving", Window: 5, History: 3);
        yield return new SummaryAttentionCase(3, 1, 6, 3, 60, 1, "ema", Alpha: 0.95f, History: 9);
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesReferenceOnBFloat16RoundedInputs(SummaryAttentionCase c) => CheckMatchesReferenceOnBFloat16RoundedInputs(c);

    [TestCaseSource(nameof(Cases))]
    public void PrefillEqualsTokenByTokenDecode(SummaryAttentionCase c) => CheckPrefillEqualsTokenByTokenDecode(c);

    protected override SummaryAttentionSession Open(SummaryAttentionCase c) => new(c.Options, c.PastInputs, activation: BFloat16Type);

    protected override IStateOutputs<SummaryState> Run(SummaryAttentionSession session, SummaryAttentionCase c, int seq, float[] q, float[] k,
        float[] v, SummaryState state) => session.Run(c, seq, q, k, v, state);

    protected override double[] CheckStatesAgainstReference(SummaryAttentionCase c, SummaryState past, float[] q, float[] k, float[] v,
        IStateOutputs<SummaryState> got)
    {
        Assert.That(got.All["present_key_summary"].Data, Is.TypeOf<float[]>(), "summary element type");
        var want = SummaryAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv, q, k, v,
            past.KeySummary, past.ValueSummary, past.Count, past.KeyWindow, past.ValueWindow);
        // Summaries are float32 sums of bfloat16 inputs: rounding them to bfloat16 would miss this tolerance.
        TensorAssert.Close(got.Present!.KeySummary, want.KeySummary, Tolerance.Float32, $"{c}: float32 key summary");
        TensorAssert.Close(got.Present.ValueSummary, want.ValueSummary, Tolerance.Float32, $"{c}: float32 value summary");
        TensorAssert.Close(got.Present.KeyWindow, want.KeyWindow, Tolerance.Float32, $"{c}: key window");
        Assert.That(got.Present.Count, Is.EqualTo(want.Count), $"{c}: count");
        return want.Output;
    }

    protected override void CheckStatesAgree(SummaryAttentionCase c, SummaryState stepwise, SummaryState whole)
    {
        TensorAssert.Close(stepwise.KeySummary, whole.KeySummary, Tolerance.Float32Reordered, $"{c}: key summary");
        TensorAssert.Close(stepwise.ValueSummary, whole.ValueSummary, Tolerance.Float32Reordered, $"{c}: value summary");
        Assert.That(stepwise.Count, Is.EqualTo(whole.Count), $"{c}: count");
        Assert.That(stepwise.KeyWindow, Is.EqualTo(whole.KeyWindow), $"{c}: key window (copied values, so exactly equal)");
        Assert.That(stepwise.ValueWindow, Is.EqualTo(whole.ValueWindow), $"{c}: value window");
    }
}
