using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Swapping;

/// <summary>
/// Plain-op attention the fixed-size memories must refuse (no mask, a constant non-causal mask) is still
/// softmax attention: the softmax rule replaces it with ONNX's Attention and the output does not change.
/// </summary>
[TestFixture]
public class MatMulSoftmaxSwapTests
{
    private const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;
    private const int H = 2, T = 5, D = 4;

    /// <summary>Keys i-2 &lt; j &lt;= i: a band (sliding window of 2), written as a constant additive mask.</summary>
    private static float[] Band()
    {
        var m = new float[T * T];
        for (var i = 0; i < T; i++)
            for (var j = 0; j < T; j++) m[i * T + j] = j <= i && j > i - 2 ? 0 : float.NegativeInfinity;
        return m;
    }

    private static ModelProto Model(bool band)
    {
        var b = new ModelBuilder()
            .Input("q", F, 1, H, T, D).Input("k", F, 1, H, T, D).Input("v", F, 1, H, T, D)
            .Initializer(Tensors.Float("s", [0.5f]))
            .Initializer(Tensors.Float("band", Band(), T, T))
            .Node("Transpose", ["k"], ["kt"], attributes: Attr.Ints("perm", 0, 1, 3, 2))
            .Node("MatMul", ["q", "kt"], ["scores"])
            .Node("Mul", ["scores", "s"], ["scaled"]);
        if (band) b.Node("Add", ["scaled", "band"], ["masked"]);
        return b.Node("Softmax", [band ? "masked" : "scaled"], ["p"], attributes: Attr.Int("axis", -1))
            .Node("MatMul", ["p", "v"], ["y"])
            .Output("y", F, 1, H, T, D)
            .Build();
    }

    private static float[] Run(ModelProto model, bool swapped)
    {
        var inputs = new Dictionary<string, FloatTensor>
        {
            ["q"] = FloatTensor.Of(Seeded.Uniform(1, H * T * D, -2, 2), 1, H, T, D),
            ["k"] = FloatTensor.Of(Seeded.Uniform(2, H * T * D, -2, 2), 1, H, T, D),
            ["v"] = FloatTensor.Of(Seeded.Uniform(3, H * T * D), 1, H, T, D),
        };
        if (swapped)
        {
            inputs["past_key.0"] = FloatTensor.Of([], 1, H, 0, D);
            inputs["past_value.0"] = FloatTensor.Of([], 1, H, 0, D);
        }
        using var runner = new ModelRunner(model);
        return runner.Run(inputs, "y")["y"].Data;
    }

    [TestCase(false, "none")]
    [TestCase(true, "a fixed pattern known before run time")]
    public void TheSoftmaxRuleKeepsTheResult(bool band, string mask)
    {
        var want = Run(Model(band), swapped: false);
        var model = Model(band);
        var report = AttentionSwapper.Swap(model, new SoftmaxRule());
        var m = report.Replaced.Single();
        Assert.That((m.Causal, m.Mask, m.Scale), Is.EqualTo((false, mask, 0.5)));
        Assert.That(model.Graph.Node.Count(n => n.OpType == "Softmax"), Is.Zero);
        TensorAssert.Close(Run(model, swapped: true), want, Tolerance.Float32Reordered, band ? "band mask" : "no mask");
    }

    [Test]
    public void AFixedSizeMemoryRefusesAConstantMaskThatIsNotCausal()
    {
        var e = Assert.Throws<GraphException>(() => AttentionSwapper.Swap(Model(band: true), AttentionRule.Parse("linear-elu")));
        Assert.That(e!.Message, Does.Contain("the mask (a fixed pattern known before run time) is not plain causal"));
    }
}
