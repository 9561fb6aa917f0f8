namespace OnnxAttention.Graphs.Ir;

/// <summary>Shape inference for the ops attention subgraphs are made of, where the model records no shape.</summary>
public sealed partial class StaticEvaluator
{
    /// <summary>The shape the model records or that follows from the producers; a null dimension is unknown.</summary>
    public long?[]? Shape(string value) =>
        value.Length == 0 ? null : _shapes.TryGetValue(value, out var s) ? s : _recorded.Of(value);

    /// <summary>A dimension's size when known (negative axes count from the end).</summary>
    public long? Dim(string value, int axis)
    {
        var s = Shape(value);
        if (s is null) return null;
        if (axis < 0) axis += s.Length;
        return axis >= 0 && axis < s.Length ? s[axis] : null;
    }

    private static long?[]? Merge(long?[]? recorded, long?[]? inferred)
    {
        if (recorded is null) return inferred;
        if (inferred is null || inferred.Length != recorded.Length) return recorded;
        return recorded.Select((d, i) => d ?? inferred[i]).ToArray();
    }

    /// <summary>The shape of <paramref name="value"/>, output of <paramref name="p"/>, from its inputs' shapes (already inferred).</summary>
    private long?[]? InferShape(GraphNode p, string value)
    {
        if (!p.Is(p.OpType)) return InferContrib(p, value);
        var first = p.Outputs.Count > 0 && p.Outputs[0] == value;
        switch (p.OpType)
        {
            case "Constant" when first:
                return p.Attribute("value")?.T is { } t ? t.Dims.Select(d => (long?)d).ToArray()
                    : p.Attribute("value_floats") is { } fs ? [fs.Floats.Count]
                    : p.Attribute("value_ints") is { } ints ? [ints.Ints.Count]
                    : [];
            case "Shape" or "Size" or "Range" or "ConstantOfShape" or "Slice" when first:
                // Small by nature (or useless unknown): fold them and take the folded shape, else what the
                // partly known inputs say.
                return Value(value)?.Shape.Select(d => (long?)d).ToArray() ?? UnfoldedShape(p);
            case "Identity" or "Cast" or "CastLike" or "Sqrt" or "Neg" or "Abs" or "Tanh" or "Exp" or "Log" or "Relu" or "Sigmoid"
                or "Softmax" or "LogSoftmax" or "Not" or "Erf" or "Reciprocal" or "IsNaN" or "IsInf" or "Gelu" or "Sin" or "Cos"
                or "Floor" or "Ceil" or "Round" or "Sign" or "Trilu" or "CumSum" or "Dropout" or "LayerNormalization"
                or "RMSNormalization" or "RotaryEmbedding" when first:
                return Shape(p.Input(0));
            case "Add" or "Sub" or "Mul" or "Div" or "Pow" or "Mod" or "Equal" or "Less" or "LessOrEqual" or "Greater" or "GreaterOrEqual"
                or "And" or "Or" or "Xor" or "Max" or "Min" or "Where" or "PRelu":
                return p.Inputs.Select(Shape).Aggregate((long?[]?)[], (acc, s) => acc is null || s is null ? null : BroadcastShape(acc, s));
            case "Transpose":
                {
                    if (Shape(p.Input(0)) is not { } s) return null;
                    var perm = p.IntsAttribute("perm")?.ToArray() ?? Enumerable.Range(0, s.Length).Reverse().Select(a => (long)a).ToArray();
                    return StaticOps.IsPermutation(perm, s.Length) ? perm.Select(a => s[a]).ToArray() : null;
                }
            case "Reshape":
                if (Shape(p.Input(0)) is not { } input) return null;
                return Value(p.Input(1)) is { } target
                    ? StaticOps.ReshapeShape(input, target.Longs, p.IntAttribute("allowzero", 0) == 1)
                    : PartialReshape(input, Partial(p.Input(1)), p.IntAttribute("allowzero", 0) == 1);
            case "Unsqueeze":
                return Shape(p.Input(0)) is { } us && Axes(p) is { } uAxes ? StaticOps.UnsqueezeShape(us, uAxes) : null;
            case "Squeeze":
                {
                    if (Shape(p.Input(0)) is not { } s || Axes(p) is not { } axes) return null;
                    if (axes.Any(a => a < -s.Length || a >= s.Length)) return null;
                    var drop = axes.Length == 0
                        ? Enumerable.Range(0, s.Length).Where(a => s[a] == 1).ToHashSet()
                        : axes.Select(a => (int)(a < 0 ? a + s.Length : a)).ToHashSet();
                    return s.Where((_, a) => !drop.Contains(a)).ToArray();
                }
            case "Expand":
                return Shape(p.Input(0)) is { } es && Partial(p.Input(1)) is { } eShape ? BroadcastShape(es, eShape) : null;
            case "Concat":
                {
                    var parts = p.Inputs.Select(Shape).ToList();
                    if (parts.Count == 0 || parts.Any(s => s is null) || parts.Select(s => s!.Length).Distinct().Count() != 1) return null;
                    var rank = parts[0]!.Length;
                    if (StaticOps.Axis(p.IntAttribute("axis", 0), rank) is not { } axis) return null;
                    var result = parts[0]!.ToArray();
                    result[axis] = parts.All(s => s![axis] is not null) ? StaticOps.SaturatingSum(parts.Select(s => s![axis]!.Value)) : null;
                    for (var a = 0; a < rank; a++)
                    {
                        if (a != axis) result[a] = parts.Select(s => s![a]).FirstOrDefault(d => d is not null);
                    }
                    return result;
                }
            case "MatMul":
                {
                    if (Shape(p.Input(0)) is not { Length: >= 2 } a || Shape(p.Input(1)) is not { Length: >= 2 } b) return null;
                    var batch = BroadcastShape(a[..^2], b[..^2]);
                    return batch is null ? null : [.. batch, a[^2], b[^1]];
                }
            case "Gather":
                {
                    if (Shape(p.Input(0)) is not { } d || Shape(p.Input(1)) is not { } i) return null;
                    if (StaticOps.Axis(p.IntAttribute("axis", 0), d.Length) is not { } axis) return null;
                    return [.. d[..axis], .. i, .. d[(axis + 1)..]];
                }
            case "Attention" when first:
                {
                    // Y: [B, Hq, S, dv] from 4-D inputs, [B, S, Hq*dv] from 3-D ones.
                    if (Shape(p.Input(0)) is not { } q || Shape(p.Input(2)) is not { } v) return null;
                    if (q.Length == 4) return v.Length == 4 ? [q[0], q[1], q[2], v[3]] : null;
                    var hq = p.IntAttribute("q_num_heads", 0);
                    var hkv = p.IntAttribute("kv_num_heads", 0);
                    return q.Length == 3 && v.Length == 3 ? [q[0], q[1], hq > 0 && hkv > 0 && v[2] is { } vh && vh / hkv <= long.MaxValue / hq ? hq * (vh / hkv) : null] : null;
                }
            default:
                return InferMore(p, value);
        }
    }

    /// <summary>Numpy broadcasting where a dimension may be unknown (an unknown against 1 stays unknown).</summary>
    private static long?[]? BroadcastShape(long?[] a, long?[] b)
    {
        var rank = Math.Max(a.Length, b.Length);
        var r = new long?[rank];
        for (var i = 0; i < rank; i++)
        {
            long? da = i - (rank - a.Length) >= 0 ? a[i - (rank - a.Length)] : 1;
            long? db = i - (rank - b.Length) >= 0 ? b[i - (rank - b.Length)] : 1;
            if (da is { } x && db is { } y)
            {
                if (x != y && x != 1 && y != 1) return null;
                r[i] = x == 1 ? y : x;
            }
            else
            {
                r[i] = da is 1 ? db : db is 1 ? da : da ?? db;
            }
        }
        return r;
    }
}
