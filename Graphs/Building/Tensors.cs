using System.Runtime.InteropServices;
using Google.Protobuf;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Building;

/// <summary>TensorProto constructors and readers for the element types the project uses.</summary>
public static class Tensors
{
    public static TensorProto Float(string name, ReadOnlySpan<float> values, params long[] dims) =>
        Raw(name, TensorProto.Types.DataType.Float, MemoryMarshal.AsBytes(values), dims, values.Length);

    public static TensorProto Int64(string name, ReadOnlySpan<long> values, params long[] dims) =>
        Raw(name, TensorProto.Types.DataType.Int64, MemoryMarshal.AsBytes(values), dims, values.Length);

    private static TensorProto Raw(string name, TensorProto.Types.DataType type, ReadOnlySpan<byte> bytes, long[] dims, int count)
    {
        var expected = dims.Aggregate(1L, (a, d) => a * d);
        if (expected != count)
        {
            throw new ArgumentException($"tensor '{name}': shape [{string.Join(", ", dims)}] holds {expected} elements, data has {count}");
        }
        var t = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(bytes) };
        t.Dims.AddRange(dims);
        return t;
    }

    /// <summary>Reads a float tensor whether it stores raw_data or float_data.</summary>
    public static float[] ToFloatArray(TensorProto t)
    {
        if (t.DataType != (int)TensorProto.Types.DataType.Float)
        {
            throw new InvalidDataException($"tensor '{t.Name}' has data type {t.DataType}, not FLOAT");
        }
        if (t.DataLocation == TensorProto.Types.DataLocation.External)
        {
            throw new InvalidDataException($"tensor '{t.Name}' keeps its data in an external file");
        }
        return t.RawData.IsEmpty ? t.FloatData.ToArray() : MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray();
    }

    /// <summary>Reads an int64 tensor whether it stores raw_data or int64_data.</summary>
    public static long[] ToInt64Array(TensorProto t)
    {
        if (t.DataType != (int)TensorProto.Types.DataType.Int64)
        {
            throw new InvalidDataException($"tensor '{t.Name}' has data type {t.DataType}, not INT64");
        }
        return t.RawData.IsEmpty ? t.Int64Data.ToArray() : MemoryMarshal.Cast<byte, long>(t.RawData.Span).ToArray();
    }
}
