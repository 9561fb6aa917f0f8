using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Cli.Bench;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Tests.Cli;

/// <summary>
/// bench-ops --type float16: our models get float16 activations and keep float32 state (their contract); ORT's contrib
/// operators get float16 throughout (GroupQueryAttention's KV cache, which ORT's CUDA provider needs in float16 or
/// bfloat16), with the bound buffers converted alike.
/// </summary>
[TestFixture]
public class HalfActivationsTests
{
    private static Dictionary<string, int> Types(ModelProto m) =>
        m.Graph.Input.Concat(m.Graph.Output).ToDictionary(v => v.Name, v => v.Type.TensorType.ElemType);

    [Test]
    public void OursKeepFloat32StateOrtsContribOperatorsGoFloat16Throughout()
    {
        var shape = new BenchModels.Shape(1, 1, 2, 2, 16);
        var (ours, oursIn, oursOut) = BenchModels.OurWindowDecode(shape, 8, 20);
        var (half, halfIn, halfOut) = HalfActivations.Convert(ours, oursIn, oursOut);
        var types = Types(half);
        const int f16 = (int)TensorProto.Types.DataType.Float16, f32 = (int)TensorProto.Types.DataType.Float, i64 = (int)TensorProto.Types.DataType.Int64;
        Assert.That(new[] { types["q"], types["k"], types["v"], types["y"] }, Is.All.EqualTo(f16));
        Assert.That(new[] { types["kc"], types["vc"], types["kc_out"], types["vc_out"] }, Is.All.EqualTo(f32));
        Assert.That(types["pos"], Is.EqualTo(i64));
        Assert.That(halfIn["q"].Data, Is.TypeOf<Float16[]>());
        Assert.That((float)((Float16[])halfIn["q"].Data)[0], Is.EqualTo(((float[])oursIn["q"].Item1)[0]).Within(1e-3));
        Assert.That(halfIn["kc"].Data, Is.TypeOf<float[]>());
        Assert.That(halfOut["y"].Data, Is.TypeOf<Float16[]>());
        Assert.That(Types(ours)["q"], Is.EqualTo(f32), "the original model is left as it was");

        var (gqa, gqaIn, gqaOut, _) = BenchModels.OrtGqaDecode(shape, 32);
        var (gqaHalf, gqaHalfIn, _) = HalfActivations.Convert(gqa, gqaIn, gqaOut);
        var gqaTypes = Types(gqaHalf);
        Assert.That(new[] { gqaTypes["q"], gqaTypes["past_key"], gqaTypes["past_value"], gqaTypes["present_key"], gqaTypes["y"] }, Is.All.EqualTo(f16));
        Assert.That(gqaTypes["seqlens_k"], Is.EqualTo((int)TensorProto.Types.DataType.Int32));
        Assert.That(gqaHalfIn["past_key"].Data, Is.TypeOf<Float16[]>());
    }
}
