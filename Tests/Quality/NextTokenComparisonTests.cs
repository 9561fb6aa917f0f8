using NUnit.Framework;
using OnnxAttention.Host.Quality;

namespace OnnxAttention.Tests.Quality;

/// <summary>The quality measures on distributions small enough to work out by hand.</summary>
[TestFixture]
public class NextTokenComparisonTests
{
    [Test]
    public void KlTopOneAndCrossEntropyMatchHandWorkedValues()
    {
        // One row, two positions, vocabulary 2. Position 0: p = (1/2, 1/2), q = (3/4, 1/4), the next id is 1.
        // Position 1: p = (1/5, 4/5), q = (1/2, 1/2): the maxima differ (1 vs the first of a tie, 0).
        float[] original = [0f, 0f, 0f, (float)Math.Log(4)];
        float[] other = [(float)Math.Log(3), 0f, 5f, 5f];
        long[] ids = [0, 1];
        var c = NextTokenComparison.Compare(original, other, ids, rows: 1);
        Assert.That(c.Kl[0], Is.EqualTo(0.5 * Math.Log(0.5 / 0.75) + 0.5 * Math.Log(0.5 / 0.25)).Within(1e-7));
        Assert.That(c.Kl[1], Is.EqualTo(0.2 * Math.Log(0.2 / 0.5) + 0.8 * Math.Log(0.8 / 0.5)).Within(1e-7));
        Assert.That(c.Top1, Is.EqualTo(new[] { 1.0, 0.0 }));
        Assert.That(c.CrossEntropyOriginal[0], Is.EqualTo(-Math.Log(0.5)).Within(1e-7));
        Assert.That(c.CrossEntropyOther[0], Is.EqualTo(-Math.Log(0.25)).Within(1e-7));
        Assert.That(double.IsNaN(c.CrossEntropyOther[1]), "the last position has no next id");
        var all = c.Bucket(0, 2);
        Assert.That(all.Kl, Is.EqualTo((c.Kl[0] + c.Kl[1]) / 2).Within(1e-12));
        Assert.That(all.CrossEntropyOther, Is.EqualTo(-Math.Log(0.25)).Within(1e-7), "the NaN of the last position is skipped");
    }

    [Test]
    public void RowsAreAveragedAndIdenticalLogitsGiveZero()
    {
        float[] logits = [1f, 2f, 3f, 0.5f, -1f, 4f];
        var c = NextTokenComparison.Compare(logits, logits, [2, 0], rows: 2);
        Assert.That(c.Kl, Is.EqualTo(new[] { 0.0 }));
        Assert.That(c.Top1, Is.EqualTo(new[] { 1.0 }));
        Assert.That(c.Buckets(128).Single().To, Is.EqualTo(1));
    }

    [Test]
    public void MismatchedShapesAndOutOfRangeIdsAreRefused()
    {
        Assert.That(() => NextTokenComparison.Compare(new float[4], new float[6], [0, 1], 1), Throws.ArgumentException.With.Message.Contains("do not fit"));
        Assert.That(() => NextTokenComparison.Compare(new float[4], new float[4], [0, 2], 1), Throws.ArgumentException.With.Message.Contains("outside the vocabulary"));
        Assert.That(() => NextTokenComparison.Compare(new float[4], new float[4], [0, 1], 1).Buckets(0), Throws.ArgumentException);
    }
}
