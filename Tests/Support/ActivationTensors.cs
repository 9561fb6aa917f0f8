using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Tests.Support;

/// <summary>
/// Activations (query, key, value, output) held as float32 arrays by the tests and fed as float32, float16 or
/// bfloat16, so one session helper serves every element type.
/// </summary>
public static class ActivationTensors
{
    public static TypedTensor Of(float[] data, bool half, long[] shape) =>
        Of(data, half ? TensorProto.Types.DataType.Float16 : TensorProto.Types.DataType.Float, shape);

    public static TypedTensor Of(float[] data, TensorProto.Types.DataType type, long[] shape) => type switch
    {
        TensorProto.Types.DataType.Float => TypedTensor.Of(data, shape),
        TensorProto.Types.DataType.Float16 => TypedTensor.Of(data.Select(v => (Float16)v).ToArray(), shape),
        TensorProto.Types.DataType.Bfloat16 => TypedTensor.Of(ToBFloat16(data), shape),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "float32, float16 or bfloat16"),
    };

    /// <summary>The elements of a float32, float16 or bfloat16 tensor as float32.</summary>
    public static float[] Floats(TypedTensor t) => t.Data switch
    {
        Float16[] h => h.Select(v => (float)v).ToArray(),
        BFloat16[] b => b.Select(v => (float)v).ToArray(),
        _ => t.Floats,
    };

    /// <summary>Each element rounded to the nearest float16: what a float16 graph input holds.</summary>
    public static float[] RoundToHalf(float[] x) => x.Select(v => (float)(Float16)v).ToArray();

    /// <summary>
    /// Each element as ONNX Runtime's own managed <see cref="BFloat16"/> conversion rounds it (not our converter):
    /// what a bfloat16 graph input holds.
    /// </summary>
    public static BFloat16[] ToBFloat16(float[] x) => x.Select(v => (BFloat16)v).ToArray();

    /// <summary>Each element rounded to bfloat16 and back: the values a reference is given for a bfloat16 input.</summary>
    public static float[] RoundToBFloat16(float[] x) => x.Select(v => (float)(BFloat16)v).ToArray();

    /// <summary>Rounds to <paramref name="type"/> and back (no-op for float32).</summary>
    public static float[] RoundTo(float[] x, TensorProto.Types.DataType type) => type switch
    {
        TensorProto.Types.DataType.Float16 => RoundToHalf(x),
        TensorProto.Types.DataType.Bfloat16 => RoundToBFloat16(x),
        _ => x,
    };
}
