using NUnit.Framework;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Quality;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Quality;

/// <summary>
/// eval --chunk: a swapped model fed a few tokens a call, its state carried between calls, gives what one call gives
/// where the state holds exactly what a call saw (float32 windows), and what rounding between calls costs where it does not.
/// </summary>
[TestFixture]
public class ChunkedRunTests
{
    private const int Rows = 2, Seq = 40;

    private static long[] Ids => StoriesModel.Ids(13, Rows * Seq);

    private static float[] Run(string rule, int chunk) => QualityModel.Run(StoriesModel.Quality.Swap(AttentionRule.Parse(rule)).Swapped, Ids, Rows, 1, chunk);

    [TestCase("window:6", 1)]
    [TestCase("window:6", 7)]
    [TestCase("hybrid:4,compress=mean", 3)]
    [TestCase("linear-elu", 1)]
    public void FeedingTokensInPiecesGivesWhatOneCallGives(string rule, int chunk)
    {
        var whole = Run(rule, 0);
        var pieces = Run(rule, chunk);
        Assert.That(pieces, Has.Length.EqualTo(whole.Length));
        var worst = whole.Zip(pieces, (a, b) => Math.Abs(a - b)).Max();
        Assert.That(worst, Is.LessThan(2e-4f), $"{rule} in pieces of {chunk}");
    }

    [Test]
    public void HalfPrecisionSumsRoundedAfterEveryTokenDriftFromOneCallAndEvalCanSeeIt()
    {
        var whole = Run("linear-elu,state=float16", 0);
        var steps = Run("linear-elu,state=float16", 1);
        var worst = whole.Zip(steps, (a, b) => Math.Abs(a - b)).Max();
        // One call keeps its running sums in float32 and rounds only what it hands on; token by token rounds them
        // after every token, as generation does.
        Assert.That(worst, Is.GreaterThan(1e-4f), "the sums are rounded to float16 between calls");
        Assert.That(worst, Is.LessThan(0.5f));
    }

    [Test]
    public void ANegativeChunkIsRefused() =>
        Assert.That(() => QualityModel.Run(StoriesModel.Quality.Swap(new WindowRule(4, 0)).Swapped, Ids, Rows, 1, -1), Throws.ArgumentException.With.Message.Contains("chunk must be >= 0"));
}
