using NUnit.Framework;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.HybridAttention;

/// <summary>Carrying the state: a prefill equals decode steps, and a split prefill equals one piece.</summary>
[TestFixture]
public class HybridAttentionStateTests
{
    public static IEnumerable<HybridAttentionCase> Cases()
    {
        foreach (var kind in new[] { "linear", "mean" })
        {
            // Prefills longer than the window: tokens leave it inside one call.
            yield return new HybridAttentionCase(2, 65, 4, 2, 64, 64, 16, kind);
            yield return new HybridAttentionCase(1, 33, 8, 2, 1, 7, 1, kind);
            yield return new HybridAttentionCase(2, 21, 4, 4, 8, 8, 5, kind, History: 3);
        }
        yield return new HybridAttentionCase(3, 30, 2, 1, 16, 8, 40, "linear"); // never evicts
    }

    private static HybridState Start(HybridAttentionCase c) => c.History > 0 ? c.Past : c.ZeroState;

    [TestCaseSource(nameof(Cases))]
    public void PrefillEqualsTokenByTokenDecode(HybridAttentionCase c) => AssertPiecesEqualWhole(c, StatePieces.EveryToken(c.Seq));

    // Three uneven pieces, so evictions fall inside pieces and on their edges.
    [TestCaseSource(nameof(Cases))]
    public void SplitPrefillEqualsOnePiece(HybridAttentionCase c) => AssertPiecesEqualWhole(c, [c.Seq / 3 + 1, c.Seq / 3 + 1 + c.Seq / 4]);

    private static void AssertPiecesEqualWhole(HybridAttentionCase c, int[] innerCuts)
    {
        using var session = new HybridAttentionSession(c.Options);
        StatePieces.AssertPiecesEqualWhole(c, Start(c), innerCuts, (n, q, k, v, past) => session.Run(c, n, q, k, v, past),
            (got, want) => AssertSameState(got, want, c));
    }

    private static void AssertSameState(HybridState got, HybridState want, HybridAttentionCase c)
    {
        Assert.That(got.Key, Is.EqualTo(want.Key), $"{c}: key cache (copied values, so exactly equal)");
        Assert.That(got.Value, Is.EqualTo(want.Value), $"{c}: value cache");
        Assert.That(got.Position, Is.EqualTo(want.Position), $"{c}: position");
        TensorAssert.Close(got.CompressedKey, want.CompressedKey, Tolerance.Float32Reordered, $"{c}: compressed key");
        TensorAssert.Close(got.CompressedValue, want.CompressedValue, Tolerance.Float32Reordered, $"{c}: compressed value");
    }
}
