using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.WindowAttention;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Swapping;

/// <summary>
/// A bfloat16 model (ONNX Attention on bfloat16 activations) through the swap: the replacement node keeps the
/// model's activation type, its state inputs and outputs are float32, and ORT picks our bfloat16 variant.
/// </summary>
[TestFixture]
public class BFloat16SwapTests
{
    private const TensorProto.Types.DataType BF = TensorProto.Types.DataType.Bfloat16;
    private const int B = 2, Hq = 4, Hkv = 2, D = 8, Dv = 6, Seq = 9;

    /// <summary>Causal self-attention with ONNX's Attention-23 on packed [batch, seq, heads*dim] bfloat16 tensors.</summary>
    private static ModelProto AttentionModel()
    {
        Dim t = "t";
        var b = new ModelBuilder(defaultOpset: 23);
        b.Input("q", BF, B, t, Hq * D).Input("k", BF, B, t, Hkv * D).Input("v", BF, B, t, Hkv * Dv).Output("y", BF, B, t, Hq * Dv);
        return b.Node("Attention", ["q", "k", "v"], ["y"],
            attributes: [Attr.Int("is_causal", 1), Attr.Int("q_num_heads", Hq), Attr.Int("kv_num_heads", Hkv)]).Build();
    }

    private static (float[] Q, float[] K, float[] V) Inputs() => (
        ActivationTensors.RoundToBFloat16(Seeded.Uniform(1, B * Seq * Hq * D)),
        ActivationTensors.RoundToBFloat16(Seeded.Uniform(2, B * Seq * Hkv * D)),
        ActivationTensors.RoundToBFloat16(Seeded.Uniform(3, B * Seq * Hkv * Dv)));

    private static Dictionary<string, TypedTensor> Feeds(ModelProto model, float[] q, float[] k, float[] v)
    {
        var feeds = new Dictionary<string, TypedTensor>
        {
            ["q"] = ActivationTensors.Of(q, BF, [B, Seq, Hq * D]),
            ["k"] = ActivationTensors.Of(k, BF, [B, Seq, Hkv * D]),
            ["v"] = ActivationTensors.Of(v, BF, [B, Seq, Hkv * Dv]),
        };
        // Every state input the swap added, at the start of a sequence (zeros), with its declared fixed shape.
        foreach (var input in model.Graph.Input.Where(i => i.Name.StartsWith("past_", StringComparison.Ordinal)))
        {
            var tensor = input.Type.TensorType;
            if (input.Name == PositionOffset.InputName)
            {
                // Declared without a shape: [batch] positions.
                feeds[input.Name] = TypedTensor.Of(new long[B], B);
                continue;
            }
            var shape = tensor.Shape.Dim.Select(d => d.DimParam == "batch" || d.DimParam == "batch_size" ? B : d.DimValue).ToArray();
            Assert.That(shape, Has.All.GreaterThan(0), $"{input.Name}: a fixed shape but for the batch");
            var count = (int)shape.Aggregate(1L, (a, x) => a * x);
            feeds[input.Name] = (TensorProto.Types.DataType)tensor.ElemType switch
            {
                TensorProto.Types.DataType.Float => TypedTensor.Of(new float[count], shape),
                TensorProto.Types.DataType.Int64 => TypedTensor.Of(new long[count], shape),
                var other => throw new AssertionException($"{input.Name}: state of type {other}; states are float32 or int64"),
            };
        }
        return feeds;
    }

    [Test]
    public void TheLinearRuleRunsABFloat16ModelWithFloat32State()
    {
        var model = AttentionModel();
        AttentionSwapper.Swap(model, AttentionRule.Parse("linear-elu"));
        var node = model.Graph.Node.Single(n => n.OpType == "LinearAttention");
        Assert.That(model.Graph.Input.Where(i => i.Name.StartsWith("past_", StringComparison.Ordinal)).Select(i => i.Type.TensorType.ElemType),
            Is.All.EqualTo((int)TensorProto.Types.DataType.Float), "state stays float32");

        var (q, k, v) = Inputs();
        using var runner = new TypedModelRunner(model);
        var got = runner.Run(Feeds(model, q, k, v), "y")["y"];
        Assert.That(got.Data, Is.TypeOf<BFloat16[]>(), node.Name);
        var attributes = new LinearAttentionAttributes(Hq, Hkv, FeatureMap.EluPlusOne, true, 1e-6f, 1f);
        var want = LinearAttentionReference.Run(attributes, B, Seq, D, Dv, q, k, v);
        TensorAssert.Close(ActivationTensors.Floats(got), want.Output, Tolerance.BFloat16, "linear-elu on bfloat16");
    }

    [Test]
    public void TheWindowRuleRunsABFloat16ModelWithFloat32Caches()
    {
        var model = AttentionModel();
        AttentionSwapper.Swap(model, AttentionRule.Parse("window:4"));
        Assert.That(model.Graph.Node.Count(n => n.OpType == "WindowAttention"), Is.EqualTo(1));

        var (q, k, v) = Inputs();
        using var runner = new TypedModelRunner(model);
        var got = runner.Run(Feeds(model, q, k, v), "y")["y"];
        Assert.That(got.Data, Is.TypeOf<BFloat16[]>());
        var attributes = WindowAttentionAttributes.Validate(HeadAttributes.Validate(Hq, Hkv, (float)(1 / Math.Sqrt(D))), 4, 0, 0f);
        var want = WindowAttentionReference.Run(attributes, B, Seq, D, Dv, q, k, v);
        TensorAssert.Close(ActivationTensors.Floats(got), want.Output, Tolerance.BFloat16, "window:4 on bfloat16");
    }
}
