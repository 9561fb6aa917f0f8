using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;

namespace OnnxAttention.Tests.Swapping;

/// <summary>The rules whose window is their size knob, resized with everything else kept (what calibrate's growth relies on).</summary>
[TestFixture]
public class WindowedRuleTests
{
    private static readonly FeatureProjection Map = new(2, 8, 2, [.. Enumerable.Range(0, 2 * 8 * 2).Select(i => i * 0.01f)], [0.5f, 0.25f, 0f, 1f]);

    private static IEnumerable<TestCaseData> Windowed()
    {
        yield return new TestCaseData(new WindowRule(16, 0), 16, "window:40");
        yield return new TestCaseData(new WindowRule(16, 4), 16, "window:40,sinks=4");
        yield return new TestCaseData(new HybridRule(8, "mean"), 8, "hybrid:40,compress=mean");
        yield return new TestCaseData(new RecomputedWindowRule(512), 512, "window:40,keys=ids");
        yield return new TestCaseData(StateTypeRule.Of(new WindowRule(6, 0), TensorProto.Types.DataType.Int8), 6, "window:40,state=int8");
        yield return new TestCaseData(StateTypeRule.Of(new HybridRule(4, "linear"), TensorProto.Types.DataType.Float16), 4, "hybrid:40,compress=linear,state=float16");
    }

    [TestCaseSource(nameof(Windowed))]
    public void AWindowedRuleIsResizedWithItsOtherSettingsKept(AttentionRule rule, int window, string resized)
    {
        Assert.That(IWindowedRule.WindowOf(rule), Is.EqualTo(window));
        var wider = IWindowedRule.Resized(rule, 40)!;
        Assert.That(wider.Spelling, Is.EqualTo(resized));
        Assert.That(IWindowedRule.WindowOf(wider), Is.EqualTo(40));
        Assert.That(IWindowedRule.Resized(wider, window), Is.EqualTo(rule), "resizing back gives the same rule");
    }

    [Test]
    public void AFittedHybridKeepsItsMapsAndMixes()
    {
        var rule = new FittedHybridRule(64, Map, Map, [0.3f, 0.7f]);
        var typed = (StateTypeRule)IWindowedRule.Resized(StateTypeRule.Of(rule, TensorProto.Types.DataType.Int8), 100)!;
        Assert.That(typed.StateType, Is.EqualTo(TensorProto.Types.DataType.Int8));
        var wider = (FittedHybridRule)typed.Inner;
        Assert.That(wider.Window, Is.EqualTo(100));
        Assert.That(wider.Query, Is.SameAs(Map));
        Assert.That(wider.Mix, Is.EqualTo(new[] { 0.3f, 0.7f }));
    }

    [Test]
    public void RulesWithoutAWindowHaveNothingToResize()
    {
        AttentionRule[] none = [new LinearRule("elu_plus_one"), new SegmentRule(64), new SummaryRule("moving", 8, 0.9f), new SoftmaxRule(), new FittedLinearRule(Map, Map),
            StateTypeRule.Of(new LinearRule("relu"), TensorProto.Types.DataType.Float16), AttentionRule.Parse("window:4@0;linear-elu@*")];
        foreach (var rule in none)
        {
            Assert.That(IWindowedRule.WindowOf(rule), Is.Null, rule.Spelling);
            Assert.That(IWindowedRule.Resized(rule, 10), Is.Null, rule.Spelling);
        }
    }
}
