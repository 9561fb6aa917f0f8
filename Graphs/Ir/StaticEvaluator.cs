using OnnxAttention.Graphs.Onnx;
using DataType = OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType;

namespace OnnxAttention.Graphs.Ir;

/// <summary>
/// Folds what a graph computes before run time: values derived from constants and static shapes (the scale
/// 1/sqrt(Shape(Q)[-1]) of ONNX's function-expanded Attention, head counts, shape vectors, masks built with
/// Range/Less/Where) and the shapes of every value whose input shapes are static. Anything that reads the data
/// of a graph input, is larger than <see cref="MaxElements"/> or uses an op it does not know stays unknown (null).
/// Shapes are inferred in one pass in topological order and values folded on demand, so the deep data path of a
/// large model is never walked recursively. The graph must not be edited while an evaluator is in use.
/// </summary>
public sealed partial class StaticEvaluator
{
    /// <summary>Larger tensors are not folded: a shape-derived mask of a long static sequence is not worth it.</summary>
    public const long MaxElements = 1 << 20;

    private readonly Graph _g;
    private readonly ValueShapes _recorded;
    private readonly Dictionary<string, StaticTensor?> _values = new();
    private readonly Dictionary<string, long?[]?> _shapes = new();
    private readonly Dictionary<string, DataType> _types = new();
    private readonly HashSet<string> _readsData = new();
    private readonly IReadOnlyDictionary<string, StaticTensor> _bound;
    private bool _constructing;

    public StaticEvaluator(Graph graph, ValueShapes recorded) : this(graph, recorded, null)
    {
    }

    /// <summary>
    /// An evaluator where <paramref name="bound"/> gives values of its own to some graph inputs or intermediate
    /// values (a probe: what a mask subgraph computes for a chosen attention_mask and sequence lengths).
    /// </summary>
    public StaticEvaluator(Graph graph, ValueShapes recorded, IReadOnlyDictionary<string, StaticTensor>? bound)
    {
        _g = graph;
        _recorded = recorded;
        _bound = bound ?? new Dictionary<string, StaticTensor>();
        foreach (var v in graph.Inputs.Concat(graph.Outputs).Concat(graph.ValueInfo))
        {
            if (v.Type?.TensorType is { ElemType: > 0 } t) _types[v.Name] = (DataType)t.ElemType;
        }
        var graphInputs = graph.Inputs.Select(i => i.Name).Where(n => !graph.Initializers.ContainsKey(n)).ToHashSet(StringComparer.Ordinal);
        foreach (var (name, tensor) in _bound)
        {
            _shapes[name] = tensor.Shape.Select(d => (long?)d).ToArray();
            _types[name] = tensor.Type;
        }
        _constructing = true;
        foreach (var node in graph.TopologicalOrder())
        {
            // A value computed from a graph input's data (not just its shape) is never known before run time.
            var data = !node.Is("Shape") && !node.Is("Size")
                && node.Inputs.Any(i => i.Length > 0 && !_bound.ContainsKey(i) && (graphInputs.Contains(i) || _readsData.Contains(i)));
            foreach (var output in node.Outputs.Where(o => o.Length > 0))
            {
                if (_bound.ContainsKey(output)) continue;
                if (data) _readsData.Add(output);
                _shapes[output] = Merge(recorded.Of(output), recorded.Of(output) is { } r && r.All(d => d is not null) ? null : Plausible(InferShape(node, output)));
            }
        }
        _constructing = false;
    }

    /// <summary>An inferred shape with a negative dimension (attributes that lie, arithmetic that wrapped) is unknown, not used.</summary>
    private static long?[]? Plausible(long?[]? shape) => shape is not null && shape.Any(d => d < 0) ? null : shape;

    public Graph Graph => _g;

    /// <summary>The value, when it can be known before run time.</summary>
    public StaticTensor? Value(string value)
    {
        if (value.Length == 0) return null;
        if (_bound.TryGetValue(value, out var given)) return given;
        if (_readsData.Contains(value)) return null;
        if (_values.TryGetValue(value, out var known)) return known;
        // The inputs a fold needs are folded first, deepest first, from an explicit stack: a chain of thousands of
        // nodes (5,000 Identity nodes in front of a Reshape's shape) must not take one stack frame per node.
        var pending = new Stack<string>();
        var expanded = new HashSet<string>(StringComparer.Ordinal);
        var retry = new List<string>();
        pending.Push(value);
        while (pending.Count > 0)
        {
            var v = pending.Peek();
            if (_values.ContainsKey(v))
            {
                pending.Pop();
                continue;
            }
            if (expanded.Add(v))
            {
                foreach (var input in FoldedInputs(v))
                {
                    if (input.Length > 0 && !_bound.ContainsKey(input) && !_readsData.Contains(input) && !_values.ContainsKey(input) && !expanded.Contains(input)) pending.Push(input);
                }
                continue;
            }
            pending.Pop();
            _values[v] = null; // a DAG never comes back here, but a malformed graph must not loop
            var result = Compute(v) ?? FromPartial(v);
            if (result is not null && (StaticTensor.Count(result.Shape) > MaxElements || result.Data.Length != StaticTensor.Count(result.Shape))) result = null;
            _values[v] = result;
            if (result is null && _constructing) retry.Add(v);
        }
        var answer = _values[value];
        // While shapes are still being inferred a value may need its own shape to be read from partial elements:
        // what could not be known yet is tried again once they are (kept for the rest of this call, so a long
        // chain is not walked again for every node of it).
        foreach (var v in retry) _values.Remove(v);
        return answer;
    }

    /// <summary>The inputs <see cref="Compute"/> folds to know <paramref name="value"/>: none for values it never folds.</summary>
    private IEnumerable<string> FoldedInputs(string value)
    {
        if (_g.Initializers.ContainsKey(value) || _g.Producer(value) is not { } p) return [];
        if (p.Outputs.Count == 0 || p.Outputs[0] != value || !p.Is(p.OpType) || p.OpType is "Shape" or "Size" or "Constant") return [];
        return p.Inputs;
    }

    /// <summary>A one-element value (any rank), e.g. a scale computed from shapes.</summary>
    public bool TryScalar(string value, out double scalar)
    {
        scalar = 0;
        if (Value(value) is not { Data.Length: 1 } t) return false;
        scalar = t.Data[0];
        return true;
    }

    /// <summary>The element type the model declares for a value or that follows from its producer; Undefined when unknown.</summary>
    public DataType ElementType(string value)
    {
        // Follows the chain of type-preserving producers in a loop (a long Identity chain is no deeper than a short one).
        var path = new List<string>();
        var v = value;
        DataType t;
        while (!_types.TryGetValue(v, out t))
        {
            _types[v] = DataType.Undefined; // a malformed graph that comes back here ends the walk
            path.Add(v);
            var (known, next) = TypeStep(v);
            if (known is { } k)
            {
                t = k;
                break;
            }
            v = next!;
        }
        foreach (var p in path) _types[p] = t;
        return t;
    }

    /// <summary>The type of <paramref name="value"/> when its producer decides it, else the value whose type it takes.</summary>
    private (DataType? Known, string? Next) TypeStep(string value)
    {
        if (_g.Initializers.TryGetValue(value, out var init)) return ((DataType)init.DataType, null);
        if (_g.Producer(value) is not { } p) return (DataType.Undefined, null);
        switch (p.OpType)
        {
            case "Constant":
                return (p.Attribute("value")?.T is { } tensor ? (DataType)tensor.DataType
                    : p.Attribute("value_int") is not null || p.Attribute("value_ints") is not null ? DataType.Int64 : DataType.Float, null);
            case "Cast":
                return ((DataType)p.IntAttribute("to", 0), null);
            case "CastLike" or "Where":
                return (null, p.Input(1));
            case "Shape" or "Size":
                return (DataType.Int64, null);
            case "Equal" or "Less" or "LessOrEqual" or "Greater" or "GreaterOrEqual" or "And" or "Or" or "Xor" or "Not" or "IsNaN" or "IsInf":
                return (DataType.Bool, null);
            case "ConstantOfShape":
                return (p.Attribute("value")?.T is { } v ? (DataType)v.DataType : DataType.Float, null);
            default:
                return p.Inputs.Count > 0 ? (null, p.Input(0)) : (DataType.Undefined, null);
        }
    }

    private StaticTensor? Compute(string value)
    {
        if (_g.Initializers.TryGetValue(value, out var init)) return FromProto(init);
        if (_g.Producer(value) is not { } p) return null;
        if (p.Outputs.Count > 0 && p.Outputs[0] != value) return null; // only first outputs are folded
        if (!p.Is(p.OpType)) return null;                              // ops of other domains are opaque
        return p.OpType switch
        {
            "Constant" => ConstantNode(p),
            "Shape" => ShapeOf(p),
            "Size" => Shape(p.Input(0)) is { } s && s.All(d => d is not null) && StaticTensor.Count(s.Select(d => d!.Value).ToArray()) is var size && size < long.MaxValue
                ? StaticTensor.Scalar(DataType.Int64, size) : null,
            "Identity" => Value(p.Input(0)),
            "Cast" => In(p, 0) is { } x ? StaticOps.Cast(x, (DataType)p.IntAttribute("to", 0)) : null,
            "CastLike" => In(p, 0) is { } x && ElementType(p.Input(1)) is var to && to != DataType.Undefined ? StaticOps.Cast(x, to) : null,
            "Sqrt" => Unary(p, Math.Sqrt),
            "Neg" => Unary(p, x => -x),
            "Abs" => Unary(p, Math.Abs),
            "Tanh" => Unary(p, Math.Tanh),
            "Exp" => Unary(p, Math.Exp),
            "Reciprocal" => Unary(p, x => 1 / x),
            "Floor" => Unary(p, Math.Floor),
            "Ceil" => Unary(p, Math.Ceiling),
            "Not" => In(p, 0) is { } x ? StaticOps.Map(x, DataType.Bool, v => v == 0 ? 1 : 0) : null,
            "Add" => Binary(p, (a, b) => a + b),
            "Sub" => Binary(p, (a, b) => a - b),
            "Mul" => Binary(p, (a, b) => a * b),
            "Div" => Binary(p, null, integerDivide: true),
            "Mod" => Binary(p, p.IntAttribute("fmod", 0) == 1 ? (a, b) => a % b : null, modulo: true),
            "Pow" => Binary(p, Math.Pow),
            "Max" when p.Inputs.Count == 2 => Binary(p, Math.Max),
            "Min" when p.Inputs.Count == 2 => Binary(p, Math.Min),
            "Equal" => Compare(p, (a, b) => a == b),
            "Less" => Compare(p, (a, b) => a < b),
            "LessOrEqual" => Compare(p, (a, b) => a <= b),
            "Greater" => Compare(p, (a, b) => a > b),
            "GreaterOrEqual" => Compare(p, (a, b) => a >= b),
            "And" => Compare(p, (a, b) => a != 0 && b != 0),
            "Or" => Compare(p, (a, b) => a != 0 || b != 0),
            "Xor" => Compare(p, (a, b) => (a != 0) ^ (b != 0)),
            "Where" => In(p, 0) is { } c && In(p, 1) is { } x && In(p, 2) is { } y ? StaticOps.Where(c, x, y) : null,
            "Gather" => In(p, 0) is { } d && In(p, 1) is { } i ? StaticOps.Gather(d, i, p.IntAttribute("axis", 0)) : null,
            "Squeeze" => In(p, 0) is { } x ? StaticOps.Squeeze(x, Axes(p)) : null,
            "Unsqueeze" => In(p, 0) is { } x && Axes(p) is { } axes ? StaticOps.Unsqueeze(x, axes) : null,
            "Concat" => p.Inputs.Select(Value).ToList() is { Count: > 0 } parts && parts.All(t => t is not null)
                ? StaticOps.Concat(parts!, p.IntAttribute("axis", 0)) : null,
            "Range" => In(p, 0) is { } start && In(p, 1) is { } limit && In(p, 2) is { } delta ? StaticOps.Range(start, limit, delta) : null,
            "ConstantOfShape" => In(p, 0) is { } shape ? StaticOps.ConstantOfShape(shape, p.Attribute("value")?.T is { } v ? FromProto(v) : null) : null,
            "Expand" => In(p, 0) is { } x && In(p, 1) is { } shape ? StaticOps.Expand(x, shape.Longs) : null,
            "Reshape" => In(p, 0) is { } x && In(p, 1) is { } shape ? StaticOps.Reshape(x, shape.Longs, p.IntAttribute("allowzero", 0) == 1) : null,
            "Transpose" => In(p, 0) is { } x ? StaticOps.Transpose(x, p.IntsAttribute("perm")?.ToArray()) : null,
            "Slice" => In(p, 0) is { } x && In(p, 1) is { } starts && In(p, 2) is { } ends
                && Optional(p, 3, out var sliceAxes) && Optional(p, 4, out var steps)
                ? StaticOps.Slice(x, starts.Longs, ends.Longs, sliceAxes, steps) : null,
            "Trilu" => In(p, 0) is { } x && Optional(p, 1, out var k) ? StaticOps.Trilu(x, k?.FirstOrDefault() ?? 0, p.IntAttribute("upper", 1) == 1) : null,
            "ScatterND" when p.Attribute("reduction") is null => In(p, 0) is { } x && In(p, 1) is { } i && In(p, 2) is { } u ? StaticOps.ScatterNd(x, i, u) : null,
            "ReduceSum" or "ReduceMax" or "ReduceMin" => In(p, 0) is { } x && ReduceAxes(p) is { } axes
                ? StaticOps.Reduce(x, axes, p.IntAttribute("keepdims", 1) == 1, p.OpType) : null,
            _ => null,
        };
    }

    private StaticTensor? In(GraphNode p, int i) => Value(p.Input(i));

    /// <summary>An optional integer input: false when it is given but not known; null in <paramref name="values"/> when absent.</summary>
    private bool Optional(GraphNode p, int i, out long[]? values)
    {
        values = null;
        if (p.Input(i).Length == 0) return true;
        values = Value(p.Input(i))?.Longs;
        return values is not null;
    }

    /// <summary>Axes from the input (opset 13+) or the attribute (older opsets); null when given but unknown.</summary>
    private long[]? Axes(GraphNode p) =>
        p.IntsAttribute("axes") is { Count: > 0 } attr ? attr.ToArray()
        : p.Input(1).Length > 0 ? Value(p.Input(1))?.Longs
        : [];

    private StaticTensor? Unary(GraphNode p, Func<double, double> f) =>
        In(p, 0) is { } x ? StaticOps.Map(x, x.Type, f) : null;

    private StaticTensor? Binary(GraphNode p, Func<double, double, double>? f, bool integerDivide = false, bool modulo = false)
    {
        if (In(p, 0) is not { } a || In(p, 1) is not { } b) return null;
        var integer = a.IsInteger;
        Func<double, double, double> op = f ?? (modulo
            ? (x, y) => y == 0 ? double.NaN : x - y * Math.Floor(x / y)                  // fmod=0: sign of the divisor
            : integerDivide && integer ? (x, y) => y == 0 ? double.NaN : Math.Truncate(x / y) // C++ integer division
            : (x, y) => x / y);
        return StaticOps.Broadcast(a, b, a.Type, op);
    }

    private StaticTensor? Compare(GraphNode p, Func<double, double, bool> f) =>
        In(p, 0) is { } a && In(p, 1) is { } b ? StaticOps.Broadcast(a, b, DataType.Bool, (x, y) => f(x, y) ? 1 : 0) : null;

    private StaticTensor? ShapeOf(GraphNode p)
    {
        if (Shape(p.Input(0)) is not { } shape) return null;
        var rank = shape.Length;
        long Clamp(long axis) => Math.Clamp(axis < 0 ? axis + rank : axis, 0, rank);
        var start = Clamp(p.IntAttribute("start", 0));
        var end = Clamp(p.IntAttribute("end", rank));
        var dims = new List<double>();
        for (var a = start; a < end; a++)
        {
            if (shape[a] is not { } d) return null;
            dims.Add(d);
        }
        return StaticTensor.Vector(DataType.Int64, [.. dims]);
    }

    private StaticTensor? ConstantNode(GraphNode p)
    {
        if (p.Attribute("value")?.T is { } t) return FromProto(t);
        if (p.Attribute("value_float") is { } f) return StaticTensor.Scalar(DataType.Float, f.F);
        if (p.Attribute("value_int") is { } i) return StaticTensor.Scalar(DataType.Int64, i.I);
        if (p.Attribute("value_floats") is { } fs) return StaticTensor.Vector(DataType.Float, [.. fs.Floats.Select(x => (double)x)]);
        if (p.Attribute("value_ints") is { } ints) return StaticTensor.Vector(DataType.Int64, [.. ints.Ints.Select(x => (double)x)]);
        return null;
    }

    private static StaticTensor? FromProto(TensorProto t)
    {
        if (StaticTensor.Count(t.Dims) > MaxElements) return null;
        return ConstantReader.TryDoubles(t) is { } data && data.Length == StaticTensor.Count(t.Dims)
            ? new StaticTensor((DataType)t.DataType, t.Dims.ToArray(), data) : null;
    }
}
