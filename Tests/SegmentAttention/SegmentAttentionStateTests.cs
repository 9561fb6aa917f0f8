using NUnit.Framework;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SegmentAttention;

/// <summary>Carrying the state: a prefill equals decode steps, a split prefill equals one piece, rows are independent.</summary>
[TestFixture]
public class SegmentAttentionStateTests
{
    public static IEnumerable<SegmentAttentionCase> Cases()
    {
        yield return new SegmentAttentionCase(2, 65, 4, 2, 64, 64, 16);            // prefill across four segment switches
        yield return new SegmentAttentionCase(1, 33, 8, 2, 1, 7, 1);               // every token its own segment
        yield return new SegmentAttentionCase(2, 21, 4, 4, 8, 8, 5, History: 3, HistoryStep: 4);
        yield return new SegmentAttentionCase(3, 30, 2, 1, 16, 8, 40);             // never switches
    }

    /// <summary>Piece boundaries (sequence indices): on segment boundaries of the absolute positions and inside segments.</summary>
    public static IEnumerable<TestCaseData> Splits()
    {
        var aligned = new SegmentAttentionCase(2, 65, 4, 2, 64, 64, 16);
        yield return new TestCaseData(aligned, new[] { 16, 48 }).SetArgDisplayNames($"{aligned}", "at 16, 48");
        yield return new TestCaseData(aligned, new[] { 7, 16, 37, 64 }).SetArgDisplayNames($"{aligned}", "at 7, 16, 37, 64");
        yield return new TestCaseData(aligned, new[] { 1, 2, 40 }).SetArgDisplayNames($"{aligned}", "at 1, 2, 40");
        // Row 0 continues at 6, row 1 at 11: cut 4 is a boundary for row 0 (10), cut 9 for row 1 (20).
        var shifted = new SegmentAttentionCase(2, 30, 4, 2, 8, 6, 10, History: 6, HistoryStep: 5);
        yield return new TestCaseData(shifted, new[] { 4, 9, 23 }).SetArgDisplayNames($"{shifted}", "at 4, 9, 23");
        var single = new SegmentAttentionCase(1, 33, 8, 2, 1, 7, 1);
        yield return new TestCaseData(single, new[] { 11, 12, 30 }).SetArgDisplayNames($"{single}", "at 11, 12, 30");
    }

    private static SegmentState Start(SegmentAttentionCase c) => c.History > 0 || c.HistoryStep != 1 ? c.Past : c.ZeroState;

    [TestCaseSource(nameof(Cases))]
    public void PrefillEqualsTokenByTokenDecode(SegmentAttentionCase c) => AssertPiecesEqualWhole(c, StatePieces.EveryToken(c.Seq));

    [TestCaseSource(nameof(Splits))]
    public void SplitPrefillEqualsOnePiece(SegmentAttentionCase c, int[] cuts) => AssertPiecesEqualWhole(c, cuts);

    [TestCaseSource(nameof(Cases))]
    public void SplitPrefillEqualsOnePieceUnevenThirds(SegmentAttentionCase c) =>
        AssertPiecesEqualWhole(c, [c.Seq / 3 + 1, c.Seq / 3 + 1 + c.Seq / 4]);

    private static void AssertPiecesEqualWhole(SegmentAttentionCase c, int[] innerCuts)
    {
        using var session = new SegmentAttentionSession(c.Options);
        StatePieces.AssertPiecesEqualWhole(c, Start(c), innerCuts, (n, q, k, v, past) => session.Run(c, n, q, k, v, past), (got, want) =>
        {
            Assert.That(got.MemoryKey, Is.EqualTo(want.MemoryKey), $"{c}: memory key (copied values, so exactly equal)");
            Assert.That(got.MemoryValue, Is.EqualTo(want.MemoryValue), $"{c}: memory value");
            Assert.That(got.SegmentKey, Is.EqualTo(want.SegmentKey), $"{c}: segment key");
            Assert.That(got.SegmentValue, Is.EqualTo(want.SegmentValue), $"{c}: segment value");
            Assert.That(got.Position, Is.EqualTo(want.Position), $"{c}: position");
        });
    }

    [Test]
    public void BatchRowsAtDifferentPositionsEqualEachRowAlone()
    {
        // 8-token segments; rows continue at 5 (segment 0, no memory yet), 16 (segment 2, empty) and 27 (segment 3, offset 3).
        var c = new SegmentAttentionCase(3, 11, 4, 2, 16, 12, 8, History: 5, HistoryStep: 11);
        var past = c.Past;
        Assert.That(past.Position, Is.EqualTo(new long[] { 5, 16, 27 }), "setup");
        using var session = new SegmentAttentionSession(c.Options);
        var together = session.Run(c, c.Seq, c.Query, c.Key, c.Value, past);
        TensorAssert.Close(together.Y, c.Reference(past).Output, Tolerance.Float32, $"{c}: against the reference");

        var one = c with { Batch = 1 };
        int qw = c.QHeads * c.Dk, kw = c.KvHeads * c.Dk, vw = c.KvHeads * c.Dv, yw = c.QHeads * c.Dv;
        int keyState = c.KvHeads * c.SegmentLength * c.Dk, valueState = c.KvHeads * c.SegmentLength * c.Dv;
        for (var b = 0; b < c.Batch; b++)
        {
            float[] Row(float[] x, int width) => x.AsSpan(b * width, width).ToArray();
            var rowPast = new SegmentState(Row(past.MemoryKey, keyState), Row(past.MemoryValue, valueState),
                Row(past.SegmentKey, keyState), Row(past.SegmentValue, valueState), [past.Position[b]]);
            var alone = session.Run(one, c.Seq, Row(c.Query, c.Seq * qw), Row(c.Key, c.Seq * kw), Row(c.Value, c.Seq * vw), rowPast);
            TensorAssert.Close(alone.Y, Row(together.Y, c.Seq * yw), Tolerance.Float32Reordered, $"row {b}: output");
            Assert.That(alone.Present!.SegmentKey, Is.EqualTo(Row(together.Present!.SegmentKey, keyState)), $"row {b}: segment key");
            Assert.That(alone.Present.MemoryValue, Is.EqualTo(Row(together.Present.MemoryValue, valueState)), $"row {b}: memory value");
            Assert.That(alone.Present.Position, Is.EqualTo(new[] { together.Present.Position[b] }), $"row {b}: position");
        }
    }
}
