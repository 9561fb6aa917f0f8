using OnnxAttention.Operators.Runtime;
using DataType = OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType;

namespace OnnxAttention.Graphs.Ir;

/// <summary>
/// The ONNX operators <see cref="StaticEvaluator"/> folds, on <see cref="StaticTensor"/>s. Results are rounded to
/// their element type (float32 arithmetic stays float32, integer casts truncate), so a folded value equals what
/// ORT computes at run time. A malformed input (shapes that do not fit) gives null, never an exception.
/// </summary>
internal static partial class StaticOps
{
    public static double Round(DataType type, double x) => type switch
    {
        DataType.Float => (float)x,
        DataType.Float16 => (double)(Half)x,
        // ORT computes bfloat16 operators in float32 and rounds that result, so round through float32 too.
        DataType.Bfloat16 => BFloat16Bits.ToSingle(BFloat16Bits.FromSingle((float)x)),
        DataType.Bool => x != 0 ? 1 : 0,
        _ when StaticTensor.IsIntegerType(type) => double.IsFinite(x) ? Math.Truncate(x) : 0,
        _ => x,
    };

    /// <summary>An axis attribute counted from the end when negative, or null when it is outside a rank-<paramref name="rank"/> tensor.</summary>
    public static int? Axis(long axis, int rank) => axis >= -rank && axis < rank ? (int)(axis < 0 ? axis + rank : axis) : null;

    /// <summary>Whether <paramref name="perm"/> names every axis of a rank-<paramref name="rank"/> tensor once.</summary>
    public static bool IsPermutation(IReadOnlyList<long> perm, int rank)
    {
        if (perm.Count != rank) return false;
        var seen = new bool[rank];
        foreach (var a in perm)
        {
            if (a < 0 || a >= rank || seen[a]) return false;
            seen[a] = true;
        }
        return true;
    }

    /// <summary>A sum of sizes that stays at long.MaxValue rather than wrapping.</summary>
    public static long SaturatingSum(IEnumerable<long> values)
    {
        var sum = 0L;
        foreach (var v in values)
        {
            if (v < 0 || sum > long.MaxValue - v) return long.MaxValue;
            sum += v;
        }
        return sum;
    }

    public static StaticTensor Map(StaticTensor x, DataType type, Func<double, double> f) =>
        new(type, x.Shape, x.Data.Select(v => Round(type, f(v))).ToArray());

    public static StaticTensor Cast(StaticTensor x, DataType to) => Map(x, to, v => v);

    public static StaticTensor? Broadcast(StaticTensor a, StaticTensor b, DataType type, Func<double, double, double> f)
    {
        if (StaticTensor.BroadcastShape(a.Shape, b.Shape) is not { } shape || StaticTensor.Count(shape) > StaticEvaluator.MaxElements) return null;
        var data = new double[StaticTensor.Count(shape)];
        var n = 0;
        foreach (var index in StaticTensor.Indices(shape)) data[n++] = Round(type, f(a.AtBroadcast(index), b.AtBroadcast(index)));
        return new StaticTensor(type, shape, data);
    }

    public static StaticTensor? Where(StaticTensor c, StaticTensor x, StaticTensor y)
    {
        if (StaticTensor.BroadcastShape(c.Shape, x.Shape) is not { } cx || StaticTensor.BroadcastShape(cx, y.Shape) is not { } shape) return null;
        if (StaticTensor.Count(shape) > StaticEvaluator.MaxElements) return null;
        var data = new double[StaticTensor.Count(shape)];
        var n = 0;
        foreach (var index in StaticTensor.Indices(shape)) data[n++] = c.AtBroadcast(index) != 0 ? x.AtBroadcast(index) : y.AtBroadcast(index);
        return new StaticTensor(x.Type, shape, data);
    }

    public static StaticTensor? Gather(StaticTensor data, StaticTensor indices, long axisAttribute)
    {
        if (Axis(axisAttribute, data.Rank) is not { } axis) return null;
        var outer = StaticTensor.Count(data.Shape[..axis]);
        var inner = StaticTensor.Count(data.Shape[(axis + 1)..]);
        var extent = data.Shape[axis];
        if (StaticTensor.Count([outer, indices.Data.Length, inner]) > StaticEvaluator.MaxElements) return null;
        var result = new List<double>();
        for (var o = 0L; o < outer; o++)
        {
            foreach (var raw in indices.Longs)
            {
                var i = raw < 0 ? raw + extent : raw;
                if (i < 0 || i >= extent) return null;
                for (var k = 0L; k < inner; k++) result.Add(data.Data[(o * extent + i) * inner + k]);
            }
        }
        return new StaticTensor(data.Type, [.. data.Shape[..axis], .. indices.Shape, .. data.Shape[(axis + 1)..]], [.. result]);
    }

    public static StaticTensor? Squeeze(StaticTensor x, long[]? axes)
    {
        if (axes is null) return null;
        if (axes.Any(a => Axis(a, x.Rank) is null)) return null;
        var drop = axes.Length == 0
            ? Enumerable.Range(0, x.Rank).Where(a => x.Shape[a] == 1).ToHashSet()
            : axes.Select(a => Axis(a, x.Rank)!.Value).ToHashSet();
        if (drop.Any(a => x.Shape[a] != 1)) return null;
        return x with { Shape = x.Shape.Where((_, a) => !drop.Contains(a)).ToArray() };
    }

    public static StaticTensor? Unsqueeze(StaticTensor x, long[] axes) =>
        UnsqueezeShape(x.Shape.Select(d => (long?)d).ToArray(), axes) is { } s ? x with { Shape = s.Select(d => d!.Value).ToArray() } : null;

    /// <summary>The shape after inserting size-1 axes at <paramref name="axes"/> (of the output rank).</summary>
    public static long?[]? UnsqueezeShape(long?[] shape, long[] axes)
    {
        var rank = shape.Length + axes.Length;
        if (axes.Any(a => Axis(a, rank) is null)) return null;
        var at = axes.Select(a => Axis(a, rank)!.Value).ToHashSet();
        if (at.Count != axes.Length) return null;
        var result = new long?[rank];
        var src = 0;
        for (var a = 0; a < rank; a++) result[a] = at.Contains(a) ? 1 : shape[src++];
        return result;
    }

    public static StaticTensor? Concat(IReadOnlyList<StaticTensor> parts, long axisAttribute)
    {
        if (parts.Count == 0) return null;
        var rank = parts[0].Rank;
        if (Axis(axisAttribute, rank) is not { } axis || parts.Any(p => p.Rank != rank)) return null;
        for (var a = 0; a < rank; a++)
        {
            if (a != axis && parts.Any(p => p.Shape[a] != parts[0].Shape[a])) return null;
        }
        var outer = StaticTensor.Count(parts[0].Shape[..axis]);
        var result = new List<double>();
        for (var o = 0L; o < outer; o++)
        {
            foreach (var p in parts)
            {
                var chunk = StaticTensor.Count(p.Shape[axis..]);
                result.AddRange(p.Data.AsSpan((int)(o * chunk), (int)chunk).ToArray());
            }
        }
        var shape = (long[])parts[0].Shape.Clone();
        shape[axis] = SaturatingSum(parts.Select(p => p.Shape[axis]));
        if (StaticTensor.Count(shape) > StaticEvaluator.MaxElements) return null;
        return new StaticTensor(parts[0].Type, shape, [.. result]);
    }

    public static StaticTensor? Range(StaticTensor start, StaticTensor limit, StaticTensor delta)
    {
        if (start.Data.Length != 1 || limit.Data.Length != 1 || delta.Data.Length != 1 || delta.Data[0] == 0) return null;
        var (s, l, d) = (start.Data[0], limit.Data[0], delta.Data[0]);
        var count = Math.Max(Math.Ceiling((l - s) / d), 0);
        if (!double.IsFinite(count) || count > StaticEvaluator.MaxElements) return null;
        var n = (long)count;
        return StaticTensor.Vector(start.Type, Enumerable.Range(0, (int)n).Select(i => Round(start.Type, s + i * d)).ToArray());
    }

    public static StaticTensor? ConstantOfShape(StaticTensor shape, StaticTensor? value)
    {
        var dims = shape.Longs;
        if (shape.Rank > 1 || dims.Any(d => d < 0) || StaticTensor.Count(dims) > StaticEvaluator.MaxElements) return null;
        var fill = value?.Data.FirstOrDefault() ?? 0;
        return new StaticTensor(value?.Type ?? DataType.Float, dims, Enumerable.Repeat(fill, (int)StaticTensor.Count(dims)).ToArray());
    }

    public static StaticTensor? Expand(StaticTensor x, long[] shape)
    {
        if (StaticTensor.BroadcastShape(x.Shape, shape) is not { } target || StaticTensor.Count(target) > StaticEvaluator.MaxElements) return null;
        return new StaticTensor(x.Type, target, StaticTensor.Indices(target).Select(x.AtBroadcast).ToArray());
    }

    public static StaticTensor? Reshape(StaticTensor x, long[] shape, bool allowZero) =>
        ReshapeShape(x.Shape.Select(d => (long?)d).ToArray(), shape, allowZero) is { } s && s.All(d => d is not null)
            && StaticTensor.Count(s.Select(d => d!.Value).ToArray()) == x.Data.Length
            ? x with { Shape = s.Select(d => d!.Value).ToArray() } : null;

    /// <summary>Reshape's output shape: 0 copies the input dimension (unless allowzero), -1 takes what is left.</summary>
    public static long?[]? ReshapeShape(long?[] input, long[] shape, bool allowZero)
    {
        var result = new long?[shape.Length];
        var inferred = -1;
        for (var a = 0; a < shape.Length; a++)
        {
            if (shape[a] < -1)
            {
                return null;
            }
            if (shape[a] == -1)
            {
                if (inferred >= 0) return null;
                inferred = a;
            }
            else if (shape[a] == 0 && !allowZero)
            {
                if (a >= input.Length) return null;
                result[a] = input[a];
            }
            else
            {
                result[a] = shape[a];
            }
        }
        if (inferred >= 0)
        {
            var known = result.Where((_, a) => a != inferred).ToList();
            if (input.Any(d => d is null) || known.Any(d => d is null)) return result;
            var product = StaticTensor.Count(known.Select(d => d!.Value).ToArray());
            var total = StaticTensor.Count(input.Select(d => d!.Value).ToArray());
            if (product == 0 || product == long.MaxValue || total == long.MaxValue || total % product != 0) return null;
            result[inferred] = total / product;
        }
        return result;
    }

    public static StaticTensor? Transpose(StaticTensor x, long[]? perm)
    {
        perm ??= Enumerable.Range(0, x.Rank).Reverse().Select(a => (long)a).ToArray();
        if (!IsPermutation(perm, x.Rank)) return null;
        var shape = perm.Select(a => x.Shape[a]).ToArray();
        var strides = StaticTensor.Strides(x.Shape);
        var data = StaticTensor.Indices(shape).Select(index =>
        {
            var offset = 0L;
            for (var a = 0; a < index.Length; a++) offset += index[a] * strides[perm[a]];
            return x.Data[offset];
        }).ToArray();
        return new StaticTensor(x.Type, shape, data);
    }

    public static StaticTensor? Slice(StaticTensor x, long[] starts, long[] ends, long[]? axes, long[]? steps)
    {
        axes ??= Enumerable.Range(0, starts.Length).Select(a => (long)a).ToArray();
        steps ??= Enumerable.Repeat(1L, starts.Length).ToArray();
        if (ends.Length != starts.Length || axes.Length != starts.Length || steps.Length != starts.Length) return null;
        var begin = new long[x.Rank];
        var step = Enumerable.Repeat(1L, x.Rank).ToArray();
        var shape = (long[])x.Shape.Clone();
        for (var i = 0; i < axes.Length; i++)
        {
            var a = (int)(axes[i] < 0 ? axes[i] + x.Rank : axes[i]);
            if (a < 0 || a >= x.Rank || steps[i] == 0 || steps[i] == long.MinValue) return null;
            var dim = x.Shape[a];
            long Norm(long v) => v < 0 ? v + dim : v;
            var s = steps[i];
            var b = s > 0 ? Math.Clamp(Norm(starts[i]), 0, dim) : Math.Clamp(Norm(starts[i]), -1, dim - 1);
            var e = s > 0 ? Math.Clamp(Norm(ends[i]), 0, dim) : Math.Clamp(Norm(ends[i]), -1, dim - 1);
            begin[a] = b;
            step[a] = s;
            // Written so that no step, however large, overflows.
            shape[a] = s > 0 ? (e > b ? (e - b - 1) / s + 1 : 0) : (b > e ? (b - e - 1) / -s + 1 : 0);
        }
        var strides = StaticTensor.Strides(x.Shape);
        var data = StaticTensor.Indices(shape).Select(index =>
        {
            var offset = 0L;
            for (var a = 0; a < index.Length; a++) offset += (begin[a] + index[a] * step[a]) * strides[a];
            return x.Data[offset];
        }).ToArray();
        return new StaticTensor(x.Type, shape, data);
    }
}
