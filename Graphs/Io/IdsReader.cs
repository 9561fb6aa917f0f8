using System.Runtime.InteropServices;
using Google.Protobuf;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Io;

/// <summary>
/// Token ids <c>[batch, seq]</c> read from an int64 TensorProto file given by a user: a regular file of bounded size,
/// dims whose product is checked (no wrapping), and exactly one copy of exactly that many ids (raw_data of exactly
/// that length, or int64_data, never both).
/// </summary>
public static class IdsReader
{
    /// <summary>2^24 ids (128 MiB): more than any context these models take, far less than a runaway read.</summary>
    public const long MaxIds = 1L << 24;

    public sealed record Ids(long[] Values, int Batch, int Sequence);

    public static Ids Read(string path, string what = "--input-ids")
    {
        var bytes = RegularFile.ReadAll(path, MaxIds * sizeof(long) + 4096, what);
        TensorProto t;
        try
        {
            t = TensorProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new GraphException($"{what} '{path}' is not an ONNX TensorProto: {e.Message}");
        }
        return FromTensor(t, what);
    }

    public static Ids FromTensor(TensorProto t, string what = "--input-ids")
    {
        var shape = $"[{string.Join(", ", t.Dims)}]";
        if (t.DataType != (int)TensorProto.Types.DataType.Int64)
        {
            throw new GraphException($"{what} has data type {t.DataType}; it must be int64 (7) [batch, seq]");
        }
        if (t.Dims.Count != 2)
        {
            throw new GraphException($"{what} must be int64 [batch, seq], got shape {shape}");
        }
        if (t.Dims[0] < 1 || t.Dims[1] < 1)
        {
            throw new GraphException($"{what} has shape {shape}; it needs at least one row and one token per row");
        }
        if (t.Dims[0] > MaxIds || t.Dims[1] > MaxIds || t.Dims[0] * t.Dims[1] > MaxIds)
        {
            throw new GraphException($"{what} has shape {shape}; at most {MaxIds} ids are taken");
        }
        if (t.DataLocation == TensorProto.Types.DataLocation.External)
        {
            throw new GraphException($"{what} keeps its data in an external file; give the ids in the TensorProto itself");
        }
        var count = t.Dims[0] * t.Dims[1];
        var typed = t.Int64Data.Count + t.FloatData.Count + t.Int32Data.Count + t.DoubleData.Count + t.Uint64Data.Count + t.StringData.Count;
        if (!t.RawData.IsEmpty && typed > 0)
        {
            throw new GraphException($"{what} holds both raw_data and int64_data; which ids are meant is ambiguous");
        }
        long[] values;
        if (!t.RawData.IsEmpty)
        {
            if (t.RawData.Length != count * sizeof(long))
            {
                throw new GraphException($"{what} declares shape {shape} ({count} ids, {count * sizeof(long)} bytes) but its raw_data holds {t.RawData.Length} bytes");
            }
            values = MemoryMarshal.Cast<byte, long>(t.RawData.Span).ToArray();
        }
        else
        {
            values = t.Int64Data.ToArray();
            if (values.Length != count) throw new GraphException($"{what} declares shape {shape} ({count} ids) but holds {values.Length}");
        }
        return new Ids(values, (int)t.Dims[0], (int)t.Dims[1]);
    }
}
