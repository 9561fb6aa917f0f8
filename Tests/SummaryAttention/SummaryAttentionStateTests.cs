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
    public void PrefillEqualsTokenByTokenDecode(SummaryAttentionCase c) => AssertPiecesEqualWhole(c, StatePieces.EveryToken(c.Seq));

    // Three uneven pieces, so ring laps and EMA steps fall inside pieces and on their edges.
    [TestCaseSource(nameof(Cases))]
    public void SplitPrefillEqualsOnePiece(SummaryAttentionCase c) => AssertPiecesEqualWhole(c, [c.Seq / 3 + 1, c.Seq / 3 + 1 + c.Seq / 4]);

    private static void AssertPiecesEqualWhole(SummaryAttentionCase c, int[] innerCuts)
    {
        using var session = new SummaryAttentionSession(c.Options, c.PastInputs);
        StatePieces.AssertPiecesEqualWhole(c, Start(c), innerCuts, (n, q, k, v, past) => session.Run(c, n, q, k, v, past),
            (got, want) => AssertSameState(got, want, c));
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
