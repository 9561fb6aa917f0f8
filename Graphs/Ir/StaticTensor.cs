using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Ir;

/// <summary>
/// A small tensor whose value is known before run time (a constant, or computed from constants and static
/// shapes): its element type, shape and elements, row-major, held as doubles whatever the type (integers of
/// shape arithmetic and masks are exact in a double).
/// </summary>
public sealed record StaticTensor(TensorProto.Types.DataType Type, long[] Shape, double[] Data)
{
    public static StaticTensor Scalar(TensorProto.Types.DataType type, double value) => new(type, [], [value]);

    public static StaticTensor Vector(TensorProto.Types.DataType type, params double[] values) => new(type, [values.Length], values);

    public int Rank => Shape.Length;

    public bool IsInteger => IsIntegerType(Type);

    public static bool IsIntegerType(TensorProto.Types.DataType t) => t is TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Int32
        or TensorProto.Types.DataType.Int16 or TensorProto.Types.DataType.Int8 or TensorProto.Types.DataType.Uint8
        or TensorProto.Types.DataType.Uint16 or TensorProto.Types.DataType.Uint32 or TensorProto.Types.DataType.Uint64;

    public static bool IsFloatType(TensorProto.Types.DataType t) => t is TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Float16
        or TensorProto.Types.DataType.Double or TensorProto.Types.DataType.Bfloat16;

    /// <summary>
    /// The element count of <paramref name="shape"/>; long.MaxValue when a dimension is negative or the product
    /// does not fit, so a shape from an untrusted model can only ever look too big, never small.
    /// </summary>
    public static long Count(IReadOnlyList<long> shape)
    {
        var count = 1L;
        if (shape.Any(d => d < 0)) return long.MaxValue;
        if (shape.Any(d => d == 0)) return 0;
        foreach (var d in shape)
        {
            if (count > long.MaxValue / d) return long.MaxValue;
            count *= d;
        }
        return count;
    }

    /// <summary>The elements as integers (shape vectors, axes, indices).</summary>
    public long[] Longs => Data.Select(d => (long)d).ToArray();

    /// <summary>Row-major strides of <paramref name="shape"/>.</summary>
    public static long[] Strides(IReadOnlyList<long> shape)
    {
        var s = new long[shape.Count];
        var acc = 1L;
        for (var i = shape.Count - 1; i >= 0; i--)
        {
            s[i] = acc;
            acc *= shape[i];
        }
        return s;
    }

    /// <summary>
    /// The element at <paramref name="index"/> of a shape this tensor broadcasts to (numpy rules: trailing axes
    /// aligned, size-1 axes repeated).
    /// </summary>
    public double AtBroadcast(IReadOnlyList<long> index)
    {
        var offset = 0L;
        var strides = Strides(Shape);
        var lead = index.Count - Shape.Length;
        for (var a = 0; a < Shape.Length; a++)
        {
            if (Shape[a] != 1) offset += index[lead + a] * strides[a];
        }
        return Data[offset];
    }

    /// <summary>The numpy broadcast of two shapes, or null when they do not broadcast.</summary>
    public static long[]? BroadcastShape(IReadOnlyList<long> a, IReadOnlyList<long> b)
    {
        var rank = Math.Max(a.Count, b.Count);
        var r = new long[rank];
        for (var i = 0; i < rank; i++)
        {
            var da = i - (rank - a.Count) >= 0 ? a[i - (rank - a.Count)] : 1;
            var db = i - (rank - b.Count) >= 0 ? b[i - (rank - b.Count)] : 1;
            if (da != db && da != 1 && db != 1) return null;
            r[i] = da == 1 ? db : da;
        }
        return r;
    }

    /// <summary>Visits every multi-index of <paramref name="shape"/> in row-major order.</summary>
    public static IEnumerable<long[]> Indices(IReadOnlyList<long> shape)
    {
        var total = Count(shape);
        var index = new long[shape.Count];
        for (var n = 0L; n < total; n++)
        {
            yield return index;
            for (var a = shape.Count - 1; a >= 0; a--)
            {
                if (++index[a] < shape[a]) break;
                index[a] = 0;
            }
        }
    }
}
