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

    [Test]
    public void BFloat16ConvertsTheSameTensorsToBFloat16()
    {
        var shape = new BenchModels.Shape(1, 4, 2, 2, 16);
        var (ours, oursIn, oursOut) = BenchModels.OurLinear(shape, ortCompatible: true, normalizer: false);
        var (bf, bfIn, bfOut) = HalfActivations.Convert(ours, oursIn, oursOut, TensorProto.Types.DataType.Bfloat16);
        var types = Types(bf);
        const int bf16 = (int)TensorProto.Types.DataType.Bfloat16, f32 = (int)TensorProto.Types.DataType.Float;
        Assert.That(new[] { types["q"], types["k"], types["v"], types["y"] }, Is.All.EqualTo(bf16));
        Assert.That(new[] { types["s"], types["s_out"] }, Is.All.EqualTo(f32));
        Assert.That(types.Keys, Has.No.Member("z").And.No.Member("z_out"), "the ORT-compatible model without a normaliser");
        Assert.That(bfIn["q"].Data, Is.TypeOf<BFloat16[]>());
        Assert.That(bfOut["y"].Data, Is.TypeOf<BFloat16[]>());
        // bfloat16 keeps 8 significant bits: within 2^-8 relative of the float.
        var q = ((float[])oursIn["q"].Item1)[3];
        Assert.That((float)((BFloat16[])bfIn["q"].Data)[3], Is.EqualTo(q).Within(Math.Abs(q) / 256));

        var (ort, ortIn, ortOut) = BenchModels.OrtLinear(shape);
        var (ortBf, ortBfIn, _) = HalfActivations.Convert(ort, ortIn, ortOut, TensorProto.Types.DataType.Bfloat16);
        Assert.That(new[] { Types(ortBf)["q"], Types(ortBf)["s"], Types(ortBf)["s_out"] }, Is.All.EqualTo(bf16), "ORT's LinearAttention: one T throughout");
        Assert.That(ortBfIn["s"].Data, Is.TypeOf<BFloat16[]>());
        Assert.That(() => HalfActivations.Convert(ort, ortIn, ortOut, TensorProto.Types.DataType.Double), Throws.TypeOf<ArgumentOutOfRangeException>());
    }
}
