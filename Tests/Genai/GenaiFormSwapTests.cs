using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Swapping;

namespace OnnxAttention.Tests.Genai;

/// <summary>
/// The genai builder's Llama records no intermediate shapes: the swap must infer the packed QKV width of every layer
/// itself, including layers whose input passes through an earlier GroupQueryAttention (whose output shape it infers).
/// </summary>
public class GenaiFormSwapTests
{
    [TestCase("linear-elu")]
    [TestCase("window:16")]
    public void EveryLayerOfTheBuildersFormSwapsWithoutRecordedShapes(string rule)
    {
        var config = GenaiLlamaConfig.Tiny(contextLength: 64);
        var model = GenaiLlamaModel.Build(config);
        model.Graph.ValueInfo.Clear();
        var report = AttentionSwapper.Swap(model, AttentionRule.Parse(rule));
        Assert.That(report.Layers, Has.Count.EqualTo(config.Layers));
    }
}
