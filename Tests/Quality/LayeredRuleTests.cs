using NUnit.Framework;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Host.Quality;

namespace OnnxAttention.Tests.Quality;

/// <summary>Per-layer rules: the spelling, its refusals, and what the swap makes of each layer.</summary>
[TestFixture]
public class LayeredRuleTests
{
    [Test]
    public void SpellingRoundTripsAndGivesEachLayerItsRule()
    {
        var rule = (LayeredRule)AttentionRule.Parse("window:16,sinks=2@0; linear-elu@2-3,1 ;softmax@*");
        Assert.That(rule.Spelling, Is.EqualTo("window:16,sinks=2@0;linear-elu@1-3;softmax@*"));
        Assert.That(AttentionRule.Parse(rule.Spelling), Is.EqualTo(rule));
        Assert.That(rule.ForLayers(5).Select(r => r.Spelling),
            Is.EqualTo(new[] { "window:16,sinks=2", "linear-elu", "linear-elu", "linear-elu", "softmax" }));
    }

    [TestCase("window:4@0;window:8@0", "gives layer 0 two rules (window:4 and window:8)")]
    [TestCase("window:4@0", "gives layer 1 no rule")]
    [TestCase("window:4@7;softmax@*", "names layer 7, but the model has 5 attention layer(s)")]
    public void PlansThatDoNotFitTheModelAreRefusedNamingTheLayer(string spelling, string message)
    {
        var rule = (LayeredRule)AttentionRule.Parse(spelling);
        Assert.That(() => rule.ForLayers(5), Throws.TypeOf<FormatException>().With.Message.Contains(message));
    }

    [TestCase("window:4@x", "must be * or a list of layer indices")]
    [TestCase("window:4@3-1", "runs backwards")]
    [TestCase("window:4@*;linear-elu@*", "two RULE@* entries")]
    [TestCase("@1", "is not RULE@LAYERS")]
    [TestCase("cubic@1", "unknown attention rule 'cubic'")]
    public void BadSpellingsAreRefused(string spelling, string message) =>
        Assert.That(() => AttentionRule.Parse(spelling), Throws.TypeOf<FormatException>().With.Message.Contains(message));

    [Test]
    public void TheSwapGivesEachLayerItsRuleAndReportsItsState()
    {
        var (model, _) = DecoderSource.Read(null);
        var report = AttentionSwapper.Swap(model, AttentionRule.Parse("window:4@0;linear-elu@1;window:2,sinks=1@*"));
        Assert.That(report.Layers.Select(l => l.Rule.Spelling), Is.EqualTo(new[] { "window:4", "linear-elu", "window:2,sinks=1", "window:2,sinks=1", "window:2,sinks=1" }));
        // The built-in model: 4 KV heads of dimension 8; a window keeps keys and values, float32.
        Assert.That(report.Layers[0].StateBytesPerSequence, Is.EqualTo(2 * 4 * 4 * 8 * 4));
        Assert.That(report.Layers[1].StateBytesPerSequence, Is.EqualTo((4 * 8 * 8 + 4 * 8) * 4));
        Assert.That(report.Layers[2].StateBytesPerSequence, Is.EqualTo(2 * 4 * 3 * 8 * 4));
        Assert.That(report.StateBytesPerSequence, Is.EqualTo(1024 + 1152 + 3 * 768));
        Assert.That(model.Graph.Node.Count(n => n.OpType == "WindowAttention"), Is.EqualTo(4));
        Assert.That(model.Graph.Node.Count(n => n.OpType == "LinearAttention"), Is.EqualTo(1));
    }

    [Test]
    public void OneRuleForEveryLayerGivesTheSameLogitsAsThePlainRule()
    {
        var (model, _) = DecoderSource.Read(null);
        var quality = new QualityModel(model);
        long[] ids = [1, 403, 407, 261, 378, 293, 7, 9, 11, 300, 12, 14];
        var plain = quality.Logits(AttentionRule.Parse("window:3"), ids, 2);
        var layered = quality.Logits(AttentionRule.Parse("window:3@0-4"), ids, 2);
        var mixed = quality.Logits(AttentionRule.Parse("window:3@0;softmax@*"), ids, 2);
        Assert.That(layered, Is.EqualTo(plain));
        Assert.That(mixed, Is.Not.EqualTo(plain), "a layer left exact changes the logits");
    }
}
