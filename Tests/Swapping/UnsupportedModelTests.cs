using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;

namespace OnnxAttention.Tests.Swapping;

/// <summary>Models we cannot swap get a message that says why, never a crash or a half-rewritten model.</summary>
[TestFixture]
public class UnsupportedModelTests
{
    private const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;

    [Test]
    public void AModelWithoutAttention()
    {
        var model = new ModelBuilder().Input("x", F, 2).Node("Relu", ["x"], ["y"]).Output("y", F, 2).Build();
        var e = Assert.Throws<GraphException>(() => AttentionSwapper.Swap(model, AttentionRule.Parse("linear-elu")));
        Assert.That(e!.Message, Does.Contain("no attention to replace in the model: it has no Softmax-based attention"));
    }

    [Test]
    public void BidirectionalAttentionIsNotReplaced()
    {
        // softmax(Q K^T * s) V with no mask: an encoder's attention, which a causal memory would change.
        var model = new ModelBuilder()
            .Input("q", F, "b", 2, "t", 4).Input("k", F, "b", 2, "t", 4).Input("v", F, "b", 2, "t", 4)
            .Initializer(Tensors.Float("s", [0.5f]))
            .Node("Transpose", ["k"], ["kt"], attributes: Attr.Ints("perm", 0, 1, 3, 2))
            .Node("MatMul", ["q", "kt"], ["scores"])
            .Node("Mul", ["scores", "s"], ["scaled"])
            .Node("Softmax", ["scaled"], ["p"], attributes: Attr.Int("axis", -1))
            .Node("MatMul", ["p", "v"], ["y"])
            .Output("y", F, "b", 2, "t", 4)
            .Build();
        var e = Assert.Throws<GraphException>(() => AttentionSwapper.Swap(model, AttentionRule.Parse("linear-elu")));
        Assert.That(e!.Message, Does.Contain("no causal mask: bidirectional attention cannot be replaced"));
    }

    [Test]
    public void APaddingMaskFromAGraphInputIsNotDropped()
    {
        var model = new ModelBuilder()
            .Input("q", F, "b", 2, "t", 4).Input("k", F, "b", 2, "t", 4).Input("v", F, "b", 2, "t", 4)
            .Input("attention_mask", F, "b", 1, "t", "t")
            .Node("Transpose", ["k"], ["kt"], attributes: Attr.Ints("perm", 0, 1, 3, 2))
            .Node("MatMul", ["q", "kt"], ["scores"])
            .Node("Add", ["scores", "attention_mask"], ["masked"])
            .Node("Softmax", ["masked"], ["p"], attributes: Attr.Int("axis", -1))
            .Node("MatMul", ["p", "v"], ["y"])
            .Output("y", F, "b", 2, "t", 4)
            .Build();
        var e = Assert.Throws<GraphException>(() => AttentionSwapper.Swap(model, AttentionRule.Parse("linear-elu")));
        Assert.That(e!.Message, Does.Contain("the mask reads the values of graph input 'attention_mask'"));
    }

    [TestCase("softmax-ish", "unknown attention rule 'softmax-ish'")]
    [TestCase("linear-cosine", "unknown linear feature map 'cosine'")]
    [TestCase("window:0", "window size '0' in 'window:0' must be a positive integer")]
    [TestCase("window:8,holes=2", "unknown window option 'holes=2'")]
    public void BadRuleSpellings(string text, string message) =>
        Assert.That(Assert.Throws<FormatException>(() => AttentionRule.Parse(text))!.Message, Does.Contain(message));
}
