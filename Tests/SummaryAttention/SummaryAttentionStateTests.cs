using NUnit.Framework;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SummaryAttention;

/// <summary>Carrying the state: a prefill equals decode steps, and a split prefill equals one piece.</summary>
[TestFixture]
public class SummaryAttentionStateTests
{
    public static IEnumerable<SummaryAttentionCase> Cases()
    {
        yield return new SummaryAttentionCase(2, 65, 4, 2, 64, 64, "cumulative");
        yield return new SummaryAttentionCase(2, 40, 4, 2, 60, 16, "moving", Window: 7);
        yield return new SummaryAttentionCase(1, 33, 8, 2, 1, 7, "moving", Window: 1);
        yield return new SummaryAttentionCase(3, 30, 2, 1, 16, 8, "ema", Alpha: 0.9f, NumSlots: 3);
        yield return new SummaryAttentionCase(2, 21, 4, 4, 8, 8, "moving", Window: 5, History: 3);
        yield return new SummaryAttentionCase(2, 21, 4, 2, 8, 8, "ema", Alpha: 0.7f, History: 9);
    }

    private static SummaryState Start(SummaryAttentionCase c) => c.History > 0 ? c.Past : c.ZeroState;

    [TestCaseSource(nameof(Cases))]
    public void PrefillEqualsTokenByTokenDecode(SummaryAttentionCase c)
    {
        using var session = new SummaryAttentionSession(c.Options, c.PastInputs);
        var whole = session.Run(c, c.Seq, c.Query, c.Key, c.Value, Start(c));

        var state = Start(c);
        var stepwise = new float[whole.Y.Length];
        int qw = c.QHeads * c.Dk, kw = c.KvHeads * c.Dk, vw = c.KvHeads * c.Dv, yw = c.QHeads * c.Dv;
        for (var t = 0; t < c.Seq; t++)
        {
            var step = session.Run(c, 1, SequenceSlices.Slice(c.Query, c.Batch, c.Seq, qw, t, 1),
                SequenceSlices.Slice(c.Key, c.Batch, c.Seq, kw, t, 1), SequenceSlices.Slice(c.Value, c.Batch, c.Seq, vw, t, 1), state);
            SequenceSlices.Place(step.Y, stepwise, c.Batch, c.Seq, yw, t, 1);
            state = step.Present!;
        }
        TensorAssert.Close(stepwise, whole.Y, Tolerance.Float32Reordered, $"{c}: outputs");
        AssertSameState(state, whole.Present!, c);
    }

    [TestCaseSource(nameof(Cases))]
    public void SplitPrefillEqualsOnePiece(SummaryAttentionCase c)
    {
        using var session = new SummaryAttentionSession(c.Options, c.PastInputs);
        var whole = session.Run(c, c.Seq, c.Query, c.Key, c.Value, Start(c));
        int qw = c.QHeads * c.Dk, kw = c.KvHeads * c.Dk, vw = c.KvHeads * c.Dv, yw = c.QHeads * c.Dv;
        // Three uneven pieces, so ring laps and EMA steps fall inside pieces and on their edges.
        int[] cuts = [0, c.Seq / 3 + 1, c.Seq / 3 + 1 + c.Seq / 4, c.Seq];
        var state = Start(c);
        var joined = new float[whole.Y.Length];
        for (var p = 0; p + 1 < cuts.Length; p++)
        {
            int start = cuts[p], count = cuts[p + 1] - cuts[p];
            var piece = session.Run(c, count, SequenceSlices.Slice(c.Query, c.Batch, c.Seq, qw, start, count),
                SequenceSlices.Slice(c.Key, c.Batch, c.Seq, kw, start, count),
                SequenceSlices.Slice(c.Value, c.Batch, c.Seq, vw, start, count), state);
            SequenceSlices.Place(piece.Y, joined, c.Batch, c.Seq, yw, start, count);
            state = piece.Present!;
        }
        TensorAssert.Close(joined, whole.Y, Tolerance.Float32Reordered, $"{c}: outputs");
        AssertSameState(state, whole.Present!, c);
    }

    private static void AssertSameState(SummaryState got, SummaryState want, SummaryAttentionCase c)
    {
        TensorAssert.Close(got.KeySummary, want.KeySummary, Tolerance.Float32Reordered, $"{c}: key summary");
        TensorAssert.Close(got.ValueSummary, want.ValueSummary, Tolerance.Float32Reordered, $"{c}: value summary");
        Assert.That(got.Count, Is.EqualTo(want.Count), $"{c}: count");
        Assert.That(got.KeyWindow, Is.EqualTo(want.KeyWindow), $"{c}: key window (copied values, so exactly equal)");
        Assert.That(got.ValueWindow, Is.EqualTo(want.ValueWindow), $"{c}: value window");
    }
}
