using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Native;

/// <summary>
/// The C host's tensor files (tools/native-host/host.c): int32 element type (ONNX enum), int32 rank, int64 dims,
/// then the elements as they lie in memory (little-endian).
/// </summary>
public static class TensorFile
{
    private const int Float = 1;
    private const int Int64 = 7;
    private const int Float16 = 10;
    private const int BFloat16 = 16;

    public static void Write(string path, TypedTensor tensor)
    {
        using var w = new BinaryWriter(File.Create(path));
        var (type, bytes) = tensor.Data switch
        {
            float[] f => (Float, MemoryMarshal.AsBytes(f.AsSpan()).ToArray()),
            long[] l => (Int64, MemoryMarshal.AsBytes(l.AsSpan()).ToArray()),
            Float16[] h => (Float16, MemoryMarshal.AsBytes(h.AsSpan()).ToArray()),
            BFloat16[] bf => (BFloat16, MemoryMarshal.AsBytes(bf.AsSpan()).ToArray()),
            _ => throw new ArgumentException($"{path}: unsupported element type {tensor.Data.GetType()}"),
        };
        w.Write(type);
        w.Write(tensor.Shape.Length);
        foreach (var d in tensor.Shape) w.Write(d);
        w.Write(bytes);
    }

    public static TypedTensor Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var type = BitConverter.ToInt32(bytes, 0);
        var rank = BitConverter.ToInt32(bytes, 4);
        var shape = MemoryMarshal.Cast<byte, long>(bytes.AsSpan(8, rank * 8)).ToArray();
        var body = bytes.AsSpan(8 + rank * 8);
        var count = shape.Aggregate(1L, (a, d) => a * d);
        Array data = type switch
        {
            Float => MemoryMarshal.Cast<byte, float>(body).ToArray(),
            Int64 => MemoryMarshal.Cast<byte, long>(body).ToArray(),
            Float16 => MemoryMarshal.Cast<byte, Float16>(body).ToArray(),
            BFloat16 => MemoryMarshal.Cast<byte, BFloat16>(body).ToArray(),
            _ => throw new InvalidDataException($"{path}: unsupported element type {type}"),
        };
        if (data.Length != count)
        {
            throw new InvalidDataException($"{path}: {data.Length} elements for shape [{string.Join(", ", shape)}]");
        }
        return new TypedTensor(data, shape);
    }
}
