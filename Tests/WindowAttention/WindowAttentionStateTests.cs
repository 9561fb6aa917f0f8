using NUnit.Framework;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.WindowAttention;

/// <summary>Carrying the state: a prefill equals decode steps, and a split prefill equals one piece.</summary>
[TestFixture]
public class WindowAttentionStateTests
{
    public static IEnumerable<WindowAttentionCase> Cases()
    {
        // Prefills longer than the window: the ring wraps inside one call.
        yield return new WindowAttentionCase(2, 65, 4, 2, 64, 64, 16);
        yield return new WindowAttentionCase(2, 65, 4, 2, 60, 60, 16, Sinks: 4);
        yield return new WindowAttentionCase(1, 33, 8, 2, 1, 7, 1, Sinks: 1);
        yield return new WindowAttentionCase(2, 21, 4, 4, 8, 8, 5, Sinks: 6, Softcap: 0.5f, History: 3);
        yield return new WindowAttentionCase(3, 30, 2, 1, 16, 8, 40, Sinks: 2); // the window never fills
    }

    private static WindowState Start(WindowAttentionCase c) => c.History > 0 ? c.Past : c.ZeroState;

    [TestCaseSource(nameof(Cases))]
    public void PrefillEqualsTokenByTokenDecode(WindowAttentionCase c) => AssertPiecesEqualWhole(c, StatePieces.EveryToken(c.Seq));

    // Three uneven pieces, so ring wraps and the end of the sinks fall inside pieces and on their edges.
    [TestCaseSource(nameof(Cases))]
    public void SplitPrefillEqualsOnePiece(WindowAttentionCase c) => AssertPiecesEqualWhole(c, [c.Seq / 3 + 1, c.Seq / 3 + 1 + c.Seq / 4]);

    private static void AssertPiecesEqualWhole(WindowAttentionCase c, int[] innerCuts)
    {
        using var session = new WindowAttentionSession(c.Options);
        StatePieces.AssertPiecesEqualWhole(c, Start(c), innerCuts, (n, q, k, v, past) => session.Run(c, n, q, k, v, past),
            (got, want) => AssertSameState(got, want, c), piece => AssertStateShapes(piece, c));
    }

    private static void AssertStateShapes(IStateOutputs<WindowState> got, WindowAttentionCase c)
    {
        Assert.That(got.All["present_key_cache"].Shape, Is.EqualTo(c.CacheKeyShape), $"{c}: key cache shape");
        Assert.That(got.All["present_value_cache"].Shape, Is.EqualTo(c.CacheValueShape), $"{c}: value cache shape");
        Assert.That(got.All["present_position"].Shape, Is.EqualTo(new long[] { c.Batch }), $"{c}: position shape");
    }

    private static void AssertSameState(WindowState got, WindowState want, WindowAttentionCase c)
    {
        Assert.That(got.Key, Is.EqualTo(want.Key), $"{c}: key cache (copied values, so exactly equal)");
        Assert.That(got.Value, Is.EqualTo(want.Value), $"{c}: value cache");
        Assert.That(got.Position, Is.EqualTo(want.Position), $"{c}: position");
    }
}
