using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Quality;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Quality;

/// <summary>After the search, the bytes a plan leaves unspent go to its windows (PlanSearch.Grow), on stories260K.</summary>
[TestFixture]
public class PlanGrowthTests
{
    private const int Rows = 2, Seq = 48;

    private static long[] Ids => StoriesModel.Ids(9, Rows * Seq);

    private static PlanSearch.Plan Measured(PlanSearch search, params AttentionRule[] rules)
    {
        var report = StoriesModel.Quality.Swap(new LayeredRule([.. rules.Select((r, l) => new LayeredRule.Entry(r, [l]))])).Report;
        var plan = new PlanSearch.Plan([.. rules.Select((r, l) => new PlanSearch.Option(r, report.Layers[l].StateBytesPerSequence, double.NaN))], report.StateBytesPerSequence, 0);
        return plan with { Kl = search.Measure(plan.Rule) };
    }

    [Test]
    public void UnspentBytesWidenAWindowAndTheMeasuredKlFalls()
    {
        var search = new PlanSearch(StoriesModel.Quality, Ids, Rows, Seq / 2);
        var plan = Measured(search, new WindowRule(4, 0), new WindowRule(4, 0), new WindowRule(4, 0), new LinearRule("elu_plus_one"), new WindowRule(4, 0));
        // window:4 in float32 is 4 KV heads x 2 x 4 tokens x 8 x 4 bytes = 1,024 bytes a layer: room for 6 more tokens in one layer.
        var perToken = 4 * 2 * 8 * 4;
        var budget = plan.Bytes + 6 * perToken + perToken / 2;
        var grown = search.Grow(plan, budget);
        Assert.That(grown.Bytes, Is.LessThanOrEqualTo(budget));
        Assert.That(grown.Bytes, Is.EqualTo(plan.Bytes + 6 * perToken), "the whole unspent bytes bought tokens, to the last one that fits");
        Assert.That(grown.Kl, Is.LessThan(plan.Kl));
        Assert.That(grown.Kl, Is.EqualTo(search.Measure(grown.Rule)), "the plan carries the KL of the rule it names");
        var windows = grown.Layers.Select(o => IWindowedRule.WindowOf(o.Rule)).ToArray();
        Assert.That(windows.Count(w => w == 10), Is.EqualTo(1), "one layer took all six tokens");
        Assert.That(windows.Count(w => w == 4), Is.EqualTo(3));
        Assert.That(grown.Layers[3].Rule, Is.EqualTo(new LinearRule("elu_plus_one")), "a rule without a window keeps its state");
        var layer = Array.IndexOf(windows, 10);
        Assert.That(search.Grown, Is.EqualTo(new[] { new PlanSearch.Growth(layer, 4, 10, plan.Kl, grown.Kl) }));
        Assert.That(grown.Layers[layer].Kl, Is.EqualTo(search.Measure(new LayeredRule([new LayeredRule.Entry(grown.Layers[layer].Rule, [layer]), new LayeredRule.Entry(new SoftmaxRule(), null)]))),
            "the grown layer's own KL is measured, not carried over");
    }

    [Test]
    public void AmpleBytesMakeEveryWindowAsLongAsTheCalibrationAndNoLonger()
    {
        var search = new PlanSearch(StoriesModel.Quality, Ids, Rows, Seq / 2);
        AttentionRule typed = StateTypeRule.Of(new HybridRule(4, "mean"), TensorProto.Types.DataType.Int8);
        var plan = Measured(search, new WindowRule(2, 4), new WindowRule(2, 0), typed, new WindowRule(8, 0), new WindowRule(3, 0));
        var grown = search.Grow(plan, budget: 1 << 30);
        Assert.That(grown.Layers.Select(o => IWindowedRule.WindowOf(o.Rule)), Is.All.EqualTo(Seq), "no window past the ids measured, where the KL cannot see it");
        Assert.That(grown.Layers[2].Rule, Is.EqualTo(StateTypeRule.Of(new HybridRule(Seq, "mean"), TensorProto.Types.DataType.Int8)), "the state type and options are kept");
        Assert.That(grown.Layers[0].Rule, Is.EqualTo(new WindowRule(Seq, 4)));
        // Windows as long as the sequence are exact softmax in four layers; the int8 layer rounds its cache.
        Assert.That(grown.Kl, Is.LessThan(0.01));
        Assert.That(grown.Kl, Is.LessThan(plan.Kl));
    }

    [Test]
    public void APlanWithoutWindowsOrUnspentBytesIsKept()
    {
        var search = new PlanSearch(StoriesModel.Quality, Ids, Rows, Seq / 2);
        var linear = Measured(search, [.. Enumerable.Repeat<AttentionRule>(new LinearRule("elu_plus_one"), 5)]);
        Assert.That(search.Grow(linear, budget: 1 << 30), Is.SameAs(linear));
        var windows = Measured(search, [.. Enumerable.Repeat<AttentionRule>(new WindowRule(4, 0), 5)]);
        var runs = search.Runs;
        Assert.That(search.Grow(windows, budget: windows.Bytes + 100), Is.SameAs(windows), "100 bytes buy no token of 256 bytes");
        Assert.That(search.Runs, Is.EqualTo(runs), "nothing to try, nothing run");
    }
}
