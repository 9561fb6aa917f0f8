using NUnit.Framework;
using OnnxAttention.Host.Generation;

namespace OnnxAttention.Tests.Generation;

/// <summary>The mask, position ids and per-row positions of a batch padded to its longest prompt, written out by hand.</summary>
[TestFixture]
public class PaddedRowsTests
{
    // Rows of 3 and 1 tokens: L = 3; the second row has 2 pads.
    private static readonly int[] Lengths = [3, 1];

    [Test]
    public void LeftPaddingPutsThePadsBeforeThePrompt()
    {
        var rows = new PaddedRows(Lengths, padsOnTheRight: false);
        var mask = new long[2 * 5];
        rows.Mask(mask, 5);
        Assert.That(mask, Is.EqualTo(new long[] { 1, 1, 1, 1, 1, /**/ 0, 0, 1, 1, 1 }));
        var positions = new long[2 * 5];
        rows.PositionIds(positions, 0, 5);
        Assert.That(positions, Is.EqualTo(new long[] { 0, 1, 2, 3, 4, /**/ 1, 1, 0, 1, 2 }), "HF: cumsum(mask) - 1, 1 at pads");
        Assert.That(rows.PromptIndex(1, 2), Is.EqualTo(0));
        Assert.That(rows.PromptIndex(1, 1), Is.EqualTo(-1));
        Assert.That(rows.ColumnOf(1, 0), Is.EqualTo(2));
        // The whole prompt in one call: the real token lands on 0, the pads on -2, -1.
        Assert.That(rows.Offset(1, 0, 3), Is.EqualTo(-2));
        // In calls of one column: pads at -1, the real token at 0, then 1, 2.
        Assert.That(Enumerable.Range(0, 5).Select(c => rows.Offset(1, c, 1)), Is.EqualTo(new long[] { -1, -1, 0, 1, 2 }));
        Assert.That(Enumerable.Range(0, 5).Select(c => rows.Offset(0, c, 1)), Is.EqualTo(new long[] { 0, 1, 2, 3, 4 }));
    }

    [Test]
    public void RightPaddingPutsThePadsBetweenThePromptAndTheNewTokens()
    {
        var rows = new PaddedRows(Lengths, padsOnTheRight: true);
        var mask = new long[2 * 5];
        rows.Mask(mask, 5);
        Assert.That(mask, Is.EqualTo(new long[] { 1, 1, 1, 1, 1, /**/ 1, 0, 0, 1, 1 }));
        var positions = new long[2 * 5];
        rows.PositionIds(positions, 0, 5);
        Assert.That(positions, Is.EqualTo(new long[] { 0, 1, 2, 3, 4, /**/ 0, 1, 1, 1, 2 }));
        Assert.That(rows.ColumnOf(1, 0), Is.EqualTo(0));
        Assert.That(rows.Offset(1, 0, 3), Is.EqualTo(0));
        // The first new token (column 3) follows the row's one real token: position 1, then 2.
        Assert.That(rows.Offset(1, 3, 1), Is.EqualTo(1));
        Assert.That(rows.Offset(1, 4, 1), Is.EqualTo(2));
        Assert.That(rows.RealBefore(1, 5), Is.EqualTo(3));
    }

    [Test]
    public void RowsOfOneLengthHaveNoPads()
    {
        var rows = new PaddedRows([4, 4], padsOnTheRight: false);
        Assert.That(rows.HasPads, Is.False);
        Assert.That(Enumerable.Range(0, 6).Select(c => rows.Offset(1, c, 2)), Is.EqualTo(new long[] { 0, 1, 2, 3, 4, 5 }));
    }
}
