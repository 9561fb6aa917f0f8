using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Cli.Verify;

/// <summary>The element type of query, key, value and output (states are float32 whatever it is).</summary>
public enum ActivationType
{
    Float32,
    Float16,
    BFloat16,
}

/// <summary>Host values of an activation type held as float32 numbers that the type represents exactly.</summary>
public static class ActivationValues
{
    public static IReadOnlyList<ActivationType> All { get; } = [ActivationType.Float32, ActivationType.Float16, ActivationType.BFloat16];

    public static string Name(this ActivationType t) => t switch
    {
        ActivationType.Float32 => "float32",
        ActivationType.Float16 => "float16",
        ActivationType.BFloat16 => "bfloat16",
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, null),
    };

    public static ActivationType Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "float32" or "float" or "fp32" => ActivationType.Float32,
        "float16" or "half" or "fp16" => ActivationType.Float16,
        "bfloat16" or "bf16" => ActivationType.BFloat16,
        _ => throw new ArgumentException($"unknown element type '{text}'; expected float32, float16 or bfloat16"),
    };

    public static TensorProto.Types.DataType Proto(this ActivationType t) => t switch
    {
        ActivationType.Float32 => TensorProto.Types.DataType.Float,
        ActivationType.Float16 => TensorProto.Types.DataType.Float16,
        ActivationType.BFloat16 => TensorProto.Types.DataType.Bfloat16,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, null),
    };

    /// <summary>The nearest value of the type (round to nearest even), as float32.</summary>
    public static float Round(this ActivationType t, float x) => t switch
    {
        ActivationType.Float32 => x,
        ActivationType.Float16 => (float)(Half)x,
        ActivationType.BFloat16 => BFloat16Bits.ToSingle(BFloat16Bits.FromSingle(x)),
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, null),
    };

    /// <summary>A tensor of the type over <paramref name="values"/> (already representable: see <see cref="Round"/>).</summary>
    public static OrtValue Tensor(this ActivationType t, float[] values, long[] shape) => t switch
    {
        ActivationType.Float32 => OrtValue.CreateTensorValueFromMemory(values, shape),
        ActivationType.Float16 => OrtValue.CreateTensorValueFromMemory(values.Select(v => new Float16(BitConverter.HalfToUInt16Bits((Half)v))).ToArray(), shape),
        ActivationType.BFloat16 => OrtValue.CreateTensorValueFromMemory(values.Select(v => new BFloat16(BFloat16Bits.FromSingle(v))).ToArray(), shape),
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, null),
    };

    /// <summary>A host tensor of float32, float16 or bfloat16 elements as float32.</summary>
    public static float[] ReadFloats(OrtValue value) => value.GetTensorTypeAndShape().ElementDataType switch
    {
        Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float => value.GetTensorDataAsSpan<float>().ToArray(),
        Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16 =>
            [.. value.GetTensorDataAsSpan<Float16>().ToArray().Select(h => (float)BitConverter.UInt16BitsToHalf(h.value))],
        Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.BFloat16 =>
            [.. value.GetTensorDataAsSpan<BFloat16>().ToArray().Select(b => BFloat16Bits.ToSingle(b.value))],
        var other => throw new InvalidOperationException($"a float tensor was expected, got {other}"),
    };
}
