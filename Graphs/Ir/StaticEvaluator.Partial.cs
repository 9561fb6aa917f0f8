namespace OnnxAttention.Graphs.Ir;

/// <summary>
/// Partly known shape vectors, for models that record no intermediate shapes (TorchScript exports): a Reshape
/// target built as Concat(Shape(x)[0], Shape(x)[1], 4, 16) is [?, ?, 4, 16] even where the batch and sequence
/// length are symbolic, which is enough to know head counts and sizes.
/// </summary>
public sealed partial class StaticEvaluator
{
    /// <summary>Vectors longer than this are not tracked element by element.</summary>
    private const int MaxPartialLength = 16;

    /// <summary>How deep partial vectors are followed through their producers; a deeper chain (thousands of Identity
    /// nodes in a hostile model) is treated as unknown instead of taking one stack frame per node.</summary>
    private const int MaxPartialDepth = 256;

    private readonly Dictionary<string, long?[]?> _partial = new();
    private int _partialDepth;

    /// <summary>
    /// The elements of an integer scalar or vector, each null where unknown before run time; null when not even
    /// the length is known. A scalar reads as one element (its rank is that of <see cref="Shape"/>).
    /// </summary>
    public long?[]? Partial(string value)
    {
        if (value.Length == 0) return null;
        if (Value(value) is { } t) return t.Rank <= 1 && t.Data.Length <= MaxPartialLength ? t.Data.Select(d => (long?)(long)d).ToArray() : null;
        if (_partial.TryGetValue(value, out var known)) return known;
        if (_partialDepth >= MaxPartialDepth) return null;
        _partial[value] = null;
        long?[]? result;
        _partialDepth++;
        try
        {
            result = ComputePartial(value);
        }
        finally
        {
            _partialDepth--;
        }
        if (result is { Length: > MaxPartialLength }) result = null;
        _partial[value] = result;
        if (result is null && _constructing) _partial.Remove(value);
        return result;
    }

    /// <summary>A scalar or vector whose elements are all known though its input's shape is not (Shape(x)[-1] of [?, ?, 4, 16]).</summary>
    private StaticTensor? FromPartial(string value)
    {
        if (Shape(value) is not { Length: <= 1 } shape || Partial(value) is not { } items || items.Any(i => i is null)) return null;
        var type = ElementType(value);
        return new StaticTensor(type == Onnx.TensorProto.Types.DataType.Undefined ? Onnx.TensorProto.Types.DataType.Int64 : type,
            shape.Length == 0 ? [] : [items.Length], items.Select(i => (double)i!.Value).ToArray());
    }

    private long?[]? ComputePartial(string value)
    {
        if (_g.Producer(value) is not { } p || !p.Is(p.OpType) || p.Outputs[0] != value) return null;
        switch (p.OpType)
        {
            case "Shape":
                {
                    if (Shape(p.Input(0)) is not { } shape) return null;
                    var rank = shape.Length;
                    long Clamp(long axis) => Math.Clamp(axis < 0 ? axis + rank : axis, 0, rank);
                    var start = Clamp(p.IntAttribute("start", 0));
                    var end = Clamp(p.IntAttribute("end", rank));
                    return shape[(int)start..(int)Math.Max(start, end)];
                }
            case "Identity" or "Cast" or "Squeeze" or "Unsqueeze" or "Reshape":
                // Rank 0 and 1 hold the same elements either way.
                return Shape(value)?.Length <= 1 ? Partial(p.Input(0)) : null;
            case "Gather" when p.IntAttribute("axis", 0) == 0:
                {
                    if (Partial(p.Input(0)) is not { } data || Value(p.Input(1)) is not { Rank: <= 1 } index) return null;
                    var picked = new long?[index.Data.Length];
                    for (var n = 0; n < picked.Length; n++)
                    {
                        var i = (long)index.Data[n];
                        if (i < 0) i += data.Length;
                        if (i < 0 || i >= data.Length) return null;
                        picked[n] = data[i];
                    }
                    return picked;
                }
            case "Concat":
                {
                    var parts = p.Inputs.Select(Partial).ToList();
                    return parts.Any(x => x is null) ? null : parts.SelectMany(x => x!).ToArray();
                }
            case "Add" or "Sub" or "Mul" or "Div" or "Max" or "Min" or "Equal":
                return Elementwise(Partial(p.Input(0)), Partial(p.Input(1)), p.OpType);
            case "Where":
                {
                    if (Partial(p.Input(0)) is not { } c || Partial(p.Input(1)) is not { } x || Partial(p.Input(2)) is not { } y) return null;
                    var n = Math.Max(c.Length, Math.Max(x.Length, y.Length));
                    if (new[] { c.Length, x.Length, y.Length }.Any(l => l != 1 && l != n)) return null;
                    return Enumerable.Range(0, n).Select(i =>
                        c[c.Length == 1 ? 0 : i] is { } cond ? (cond != 0 ? x[x.Length == 1 ? 0 : i] : y[y.Length == 1 ? 0 : i]) : null).ToArray();
                }
            case "Slice":
                {
                    if (Partial(p.Input(0)) is not { } data || Value(p.Input(1)) is not { } starts || Value(p.Input(2)) is not { } ends) return null;
                    if (!Optional(p, 3, out var axes) || !Optional(p, 4, out var steps)) return null;
                    var asTensor = new StaticTensor(Onnx.TensorProto.Types.DataType.Int64, [data.Length], Enumerable.Range(0, data.Length).Select(i => (double)i).ToArray());
                    return StaticOps.Slice(asTensor, starts.Longs, ends.Longs, axes, steps) is { } picked ? picked.Longs.Select(i => data[i]).ToArray() : null;
                }
            default:
                return null;
        }
    }

    private static long?[]? Elementwise(long?[]? a, long?[]? b, string op)
    {
        if (a is null || b is null) return null;
        var n = Math.Max(a.Length, b.Length);
        if ((a.Length != 1 && a.Length != n) || (b.Length != 1 && b.Length != n)) return null;
        var r = new long?[n];
        for (var i = 0; i < n; i++)
        {
            if (a[a.Length == 1 ? 0 : i] is not { } x || b[b.Length == 1 ? 0 : i] is not { } y) continue;
            r[i] = op switch
            {
                "Add" => x + y,
                "Sub" => x - y,
                "Mul" => x * y,
                "Div" => y == 0 ? null : x / y,
                "Max" => Math.Max(x, y),
                "Min" => Math.Min(x, y),
                _ => x == y ? 1 : 0,
            };
        }
        return r;
    }

    /// <summary>Reshape to a partly known target: an unknown element is an unknown dimension.</summary>
    private static long?[]? PartialReshape(long?[] input, long?[]? target, bool allowZero)
    {
        if (target is null) return null;
        var result = new long?[target.Length];
        for (var a = 0; a < target.Length; a++)
        {
            result[a] = target[a] switch
            {
                null or -1 => null,
                0 when !allowZero => a < input.Length ? input[a] : null,
                var d => d,
            };
        }
        return result;
    }

    /// <summary>Shapes of Shape, Range, ConstantOfShape and Slice outputs whose values cannot be folded.</summary>
    private long?[]? UnfoldedShape(GraphNode p)
    {
        switch (p.OpType)
        {
            case "Shape":
                return Partial(p.Outputs[0]) is { } dims ? [dims.Length] : null;
            case "Size":
                return [];
            case "Range":
                return [null];
            case "ConstantOfShape":
                return Partial(p.Input(0));
            case "Slice":
                {
                    if (Shape(p.Input(0)) is not { } shape) return null;
                    var starts = Partial(p.Input(1));
                    var ends = Partial(p.Input(2));
                    var axes = p.Input(3).Length == 0 ? Enumerable.Range(0, starts?.Length ?? 0).Select(a => (long?)a).ToArray() : Partial(p.Input(3));
                    var steps = p.Input(4).Length == 0 ? null : Partial(p.Input(4));
                    if (starts is null || ends is null || axes is null || axes.Length != starts.Length || ends.Length != starts.Length) return null;
                    var result = (long?[])shape.Clone();
                    for (var i = 0; i < axes.Length; i++)
                    {
                        if (axes[i] is not { } axis) return null;
                        var a = (int)(axis < 0 ? axis + shape.Length : axis);
                        if (a < 0 || a >= shape.Length) return null;
                        var step = steps is null ? 1 : steps[i];
                        if (shape[a] is not { } dim || starts[i] is not { } s || ends[i] is not { } e || step is not { } st || st == 0)
                        {
                            result[a] = null;
                            continue;
                        }
                        long Norm(long v) => v < 0 ? v + dim : v;
                        var b = st > 0 ? Math.Clamp(Norm(s), 0, dim) : Math.Clamp(Norm(s), -1, dim - 1);
                        var end = st > 0 ? Math.Clamp(Norm(e), 0, dim) : Math.Clamp(Norm(e), -1, dim - 1);
                        result[a] = Math.Max(0, st > 0 ? (end - b + st - 1) / st : (b - end - st - 1) / -st);
                    }
                    return result;
                }
            default:
                return null;
        }
    }

    /// <summary>Axes of a reduction: the attribute (older opsets) or the second input; empty = all.</summary>
    private long[]? ReduceAxes(GraphNode p) =>
        p.IntsAttribute("axes") is { Count: > 0 } attr ? attr.ToArray()
        : p.Input(1).Length > 0 ? Value(p.Input(1))?.Longs
        : [];

    /// <summary>
    /// ONNX Runtime's normalisations (com.microsoft, as the onnxruntime-genai builder writes them): the first output
    /// (and SkipLayerNorm's input + skip sum, output 3) have the input's shape.
    /// </summary>
    private long?[]? InferContrib(GraphNode p, string value)
    {
        if (p.Domain != "com.microsoft") return null;
        var index = p.Outputs.IndexOf(value);
        return p.OpType switch
        {
            "SimplifiedLayerNormalization" or "LayerNormalization" when index == 0 => Shape(p.Input(0)),
            "SkipSimplifiedLayerNormalization" or "SkipLayerNormalization" when index is 0 or 3 => Shape(p.Input(0)),
            "GroupQueryAttention" when index == 0 => GroupQueryAttentionOutput(p),
            _ => null,
        };
    }

    /// <summary>
    /// GroupQueryAttention's output is [batch, seq, num_heads * head size]; with packed QKV (no key input) the query
    /// input's last dimension holds num_heads + 2 * kv_num_heads heads.
    /// </summary>
    private long?[]? GroupQueryAttentionOutput(GraphNode p)
    {
        if (Shape(p.Input(0)) is not { Length: 3 } q) return null;
        long heads = p.IntAttribute("num_heads", 0), kvHeads = p.IntAttribute("kv_num_heads", 0);
        if (p.Inputs.Count > 1 && p.Input(1).Length > 0) return q;
        if (q[2] is not { } width || heads <= 0 || kvHeads <= 0 || width % (heads + 2 * kvHeads) != 0) return [q[0], q[1], null];
        return [q[0], q[1], width / (heads + 2 * kvHeads) * heads];
    }

    /// <summary>Shapes of the ops <see cref="InferShape"/> leaves to this file: reductions, Gemm, Split, ScatterND.</summary>
    private long?[]? InferMore(GraphNode p, string value)
    {
        var first = p.Outputs.Count > 0 && p.Outputs[0] == value;
        switch (p.OpType)
        {
            case "ReduceMean" or "ReduceSum" or "ReduceMax" or "ReduceMin" or "ReduceProd" or "ReduceL2" or "ReduceSumSquare" when first:
                {
                    if (Shape(p.Input(0)) is not { } s || ReduceAxes(p) is not { } axes) return null;
                    if (axes.Length == 0 && p.IntAttribute("noop_with_empty_axes", 0) == 1) return s;
                    var set = (axes.Length == 0 ? Enumerable.Range(0, s.Length).Select(a => (long)a) : axes.Select(a => a < 0 ? a + s.Length : a)).ToHashSet();
                    return p.IntAttribute("keepdims", 1) == 1
                        ? s.Select((d, a) => set.Contains(a) ? 1 : d).ToArray()
                        : s.Where((_, a) => !set.Contains(a)).ToArray();
                }
            case "Gemm" when first:
                {
                    if (Shape(p.Input(0)) is not { Length: 2 } a || Shape(p.Input(1)) is not { Length: 2 } b) return null;
                    var m = p.IntAttribute("transA", 0) == 1 ? a[1] : a[0];
                    var n = p.IntAttribute("transB", 0) == 1 ? b[0] : b[1];
                    return [m, n];
                }
            case "Split":
                {
                    if (Shape(p.Input(0)) is not { } s) return null;
                    var axis = (int)p.IntAttribute("axis", 0);
                    if (axis < 0) axis += s.Length;
                    if (axis < 0 || axis >= s.Length) return null;
                    var index = p.Outputs.IndexOf(value);
                    var sizes = p.IntsAttribute("split")?.ToArray() ?? (p.Input(1).Length > 0 ? Value(p.Input(1))?.Longs : null);
                    long? size = sizes is not null ? (index < sizes.Length ? sizes[index] : null)
                        : s[axis] is { } total && total % p.Outputs.Count == 0 ? total / p.Outputs.Count : null;
                    var result = (long?[])s.Clone();
                    result[axis] = size;
                    return result;
                }
            case "ScatterND" or "ScatterElements" when first:
                return Shape(p.Input(0));
            case "SimplifiedLayerNormalization" when first:
                return Shape(p.Input(0));
            default:
                return null;
        }
    }
}
