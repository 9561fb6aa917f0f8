using NUnit.Framework;
using OnnxAttention.Graphs.Decoders;
using OnnxAttention.Host.Demo;

namespace OnnxAttention.Tests.Host;

[TestFixture]
public class StatefulDecoderDemoTests
{
    [Test]
    public void GeneratingWithCarriedStateMatchesOneWholeSequenceCall()
    {
        var config = new TinyDecoderConfig(Vocab: 97, Hidden: 32, Layers: 3, QueryHeads: 4, KvHeads: 2, FeedForward: 48);
        var seen = new List<long>();
        var result = new StatefulDecoderDemo(config).Run(promptLength: 9, newTokens: 12, (_, t) => seen.Add(t));

        Assert.That(result.Generated, Has.Length.EqualTo(12));
        Assert.That(seen, Is.EqualTo(result.Generated));
        Assert.That(result.Generated, Is.All.InRange(0, 96));
        Assert.That(result.MaxLogitDifference, Is.LessThan(1e-4));
        // 3 layers x (state 2x8x8 + normaliser 2x8) floats, independent of how many tokens were generated.
        Assert.That(result.StateBytesPerSequence, Is.EqualTo(3 * (2 * 8 * 8 + 2 * 8) * 4));
    }

    [Test]
    public void RejectsAnEmptyPrompt() =>
        Assert.Throws<ArgumentException>(() => new StatefulDecoderDemo(new TinyDecoderConfig()).Run(0, 1));
}
