using Microsoft.ML.OnnxRuntime;

namespace OnnxAttention.Tests.Support;

/// <summary>
/// Activations (query, key, value, output) held as float32 arrays by the tests and fed as float32 or float16, so
/// one session helper serves both element types.
/// </summary>
public static class ActivationTensors
{
    public static TypedTensor Of(float[] data, bool half, long[] shape) =>
        half ? TypedTensor.Of(data.Select(v => (Float16)v).ToArray(), shape) : TypedTensor.Of(data, shape);

    /// <summary>The elements of a float32 or float16 tensor as float32.</summary>
    public static float[] Floats(TypedTensor t) => t.Data is Float16[] h ? h.Select(v => (float)v).ToArray() : t.Floats;

    /// <summary>Each element rounded to the nearest float16: what a float16 graph input holds.</summary>
    public static float[] RoundToHalf(float[] x) => x.Select(v => (float)(Float16)v).ToArray();
}
