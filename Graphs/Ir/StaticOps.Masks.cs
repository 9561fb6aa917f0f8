using DataType = OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType;

namespace OnnxAttention.Graphs.Ir;

/// <summary>The ops exporters build attention masks with (Trilu, ScatterND, reductions of a mask to lengths).</summary>
internal static partial class StaticOps
{
    /// <summary>Trilu over the last two axes: upper keeps j - i &gt;= k, lower keeps j - i &lt;= k; the rest is 0.</summary>
    public static StaticTensor? Trilu(StaticTensor x, long k, bool upper)
    {
        if (x.Rank < 2) return null;
        var rows = x.Shape[^2];
        var cols = x.Shape[^1];
        var data = new double[x.Data.Length];
        for (var n = 0L; n < data.Length; n++)
        {
            var i = n / cols % rows;
            var j = n % cols;
            var keep = upper ? j - i >= k : j - i <= k;
            data[n] = keep ? x.Data[n] : 0;
        }
        return x with { Data = data };
    }

    /// <summary>ScatterND without reduction: the slices of <paramref name="data"/> the index tuples name take the updates.</summary>
    public static StaticTensor? ScatterNd(StaticTensor data, StaticTensor indices, StaticTensor updates)
    {
        if (indices.Rank < 1) return null;
        var tuple = (int)indices.Shape[^1];
        if (tuple > data.Rank) return null;
        var sliceSize = StaticTensor.Count(data.Shape[tuple..]);
        var count = StaticTensor.Count(indices.Shape[..^1]);
        if (updates.Data.Length != count * sliceSize) return null;
        var strides = StaticTensor.Strides(data.Shape);
        var result = (double[])data.Data.Clone();
        for (var n = 0L; n < count; n++)
        {
            var offset = 0L;
            for (var a = 0; a < tuple; a++)
            {
                var index = (long)indices.Data[n * tuple + a];
                if (index < 0) index += data.Shape[a];
                if (index < 0 || index >= data.Shape[a]) return null;
                offset += index * strides[a];
            }
            Array.Copy(updates.Data, n * sliceSize, result, offset, sliceSize);
        }
        return data with { Data = result };
    }

    /// <summary>ReduceSum, ReduceMax or ReduceMin over <paramref name="axes"/> (all axes when empty).</summary>
    public static StaticTensor? Reduce(StaticTensor x, long[] axes, bool keepDims, string op)
    {
        var set = (axes.Length == 0 ? Enumerable.Range(0, x.Rank).Select(a => (long)a) : axes.Select(a => a < 0 ? a + x.Rank : a)).ToHashSet();
        if (set.Any(a => a < 0 || a >= x.Rank)) return null;
        var keptShape = x.Shape.Select((d, a) => set.Contains(a) ? 1 : d).ToArray();
        var acc = new double[StaticTensor.Count(keptShape)];
        var seen = new bool[acc.Length];
        var keptStrides = StaticTensor.Strides(keptShape);
        var n = 0;
        foreach (var index in StaticTensor.Indices(x.Shape))
        {
            var o = 0L;
            for (var a = 0; a < index.Length; a++) if (!set.Contains(a)) o += index[a] * keptStrides[a];
            var v = x.Data[n++];
            acc[o] = !seen[o] ? v : op switch { "ReduceMax" => Math.Max(acc[o], v), "ReduceMin" => Math.Min(acc[o], v), _ => acc[o] + v };
            seen[o] = true;
        }
        var shape = keepDims ? keptShape : x.Shape.Where((_, a) => !set.Contains(a)).ToArray();
        return new StaticTensor(x.Type, shape, acc.Select(v => Round(x.Type, v)).ToArray());
    }
}
