using System.Runtime.InteropServices;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Graphs.Ir;

/// <summary>Reads small constant tensors (scalars, shape vectors) whatever field the exporter stored them in.</summary>
public static class ConstantReader
{
    public static bool TryScalar(TensorProto? t, out double value)
    {
        value = 0;
        var values = TryDoubles(t);
        if (values is not { Length: 1 }) return false;
        value = values[0];
        return true;
    }

    public static double[]? TryDoubles(TensorProto? t)
    {
        if (t is null || t.DataLocation == TensorProto.Types.DataLocation.External) return null;
        var raw = t.RawData.Span;
        return (TensorProto.Types.DataType)t.DataType switch
        {
            TensorProto.Types.DataType.Float => raw.IsEmpty ? t.FloatData.Select(x => (double)x).ToArray() : MemoryMarshal.Cast<byte, float>(raw).ToArray().Select(x => (double)x).ToArray(),
            TensorProto.Types.DataType.Double => raw.IsEmpty ? t.DoubleData.ToArray() : MemoryMarshal.Cast<byte, double>(raw).ToArray(),
            TensorProto.Types.DataType.Float16 => raw.IsEmpty
                ? t.Int32Data.Select(x => (double)BitConverter.UInt16BitsToHalf((ushort)x)).ToArray()
                : MemoryMarshal.Cast<byte, Half>(raw).ToArray().Select(x => (double)x).ToArray(),
            // bfloat16 keeps its 16 bits in the low half of each int32_data entry, as float16 does.
            TensorProto.Types.DataType.Bfloat16 => raw.IsEmpty
                ? t.Int32Data.Select(x => (double)BFloat16Bits.ToSingle((ushort)x)).ToArray()
                : MemoryMarshal.Cast<byte, ushort>(raw).ToArray().Select(x => (double)BFloat16Bits.ToSingle(x)).ToArray(),
            TensorProto.Types.DataType.Int64 => raw.IsEmpty ? t.Int64Data.Select(x => (double)x).ToArray() : MemoryMarshal.Cast<byte, long>(raw).ToArray().Select(x => (double)x).ToArray(),
            TensorProto.Types.DataType.Int32 => raw.IsEmpty ? t.Int32Data.Select(x => (double)x).ToArray() : MemoryMarshal.Cast<byte, int>(raw).ToArray().Select(x => (double)x).ToArray(),
            // bool, int8 and uint8 keep one element per int32_data entry, or one byte each in raw_data.
            TensorProto.Types.DataType.Bool or TensorProto.Types.DataType.Uint8 => raw.IsEmpty ? t.Int32Data.Select(x => (double)x).ToArray() : raw.ToArray().Select(x => (double)x).ToArray(),
            TensorProto.Types.DataType.Int8 => raw.IsEmpty ? t.Int32Data.Select(x => (double)x).ToArray() : raw.ToArray().Select(x => (double)(sbyte)x).ToArray(),
            _ => null,
        };
    }

    public static long[]? TryInts(TensorProto? t) => TryDoubles(t)?.Select(d => (long)d).ToArray();
}
