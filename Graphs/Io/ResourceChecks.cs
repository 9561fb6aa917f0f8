using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using DataType = OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType;

namespace OnnxAttention.Graphs.Io;

/// <summary>
/// Checks run on a model just before ONNX Runtime gets it: the op arity ORT trusts (see <see cref="OpArity"/>), and
/// tensors whose size is known before run time, at least from below, that would need more memory than a budget.
/// ORT allocates what a Range asks for (from -2^31-1 to a sequence length: 2^31 elements) before it could fail.
/// </summary>
public static class ResourceChecks
{
    public static void Check(ModelProto model, long budgetBytes)
    {
        var g = model.Graph ?? throw new GraphException("the model holds no graph");
        foreach (var n in g.Node) OpArity.Check(n, "the model");
        if (!g.Node.Any(n => n.OpType is "Range" or "ConstantOfShape" or "Expand")) return;
        var graph = new Graph(g);
        var eval = new StaticEvaluator(graph, new ValueShapes(g));
        foreach (var node in graph.Nodes)
        {
            if (!node.Is(node.OpType)) continue;
            var (elements, type) = node.OpType switch
            {
                "Range" => (RangeLowerBound(graph, eval, node), eval.ElementType(node.Input(0))),
                "ConstantOfShape" => (ShapeCount(eval, node.Input(0)), node.Attribute("value")?.T is { } v ? (DataType)v.DataType : DataType.Float),
                "Expand" => (ShapeCount(eval, node.Input(1)), eval.ElementType(node.Input(0))),
                _ => (null, DataType.Undefined),
            };
            if (elements is not { } count) continue;
            var bytes = count * Math.Max(1, ElementBytes(type));
            if (bytes > budgetBytes)
            {
                throw new GraphException($"node '{node.Name}' ({node.OpType}) makes a tensor of at least {count:0} elements ({bytes:0} bytes), " +
                                         $"more than the memory budget of {budgetBytes} bytes (see --max-memory)");
            }
        }
    }

    /// <summary>The fewest elements a Range can make, when its delta is known and its bounds are known or dimensions.</summary>
    private static double? RangeLowerBound(Graph g, StaticEvaluator eval, GraphNode range)
    {
        if (Scalar(eval, range.Input(2)) is not { } delta || delta == 0 || !double.IsFinite(delta)) return null;
        var (startLow, startHigh) = Bounds(g, eval, range.Input(0));
        var (limitLow, limitHigh) = Bounds(g, eval, range.Input(1));
        var count = delta > 0 ? Math.Ceiling((limitLow - startHigh) / delta) : Math.Ceiling((limitHigh - startLow) / delta);
        return double.IsFinite(count) && count > 0 ? count : null;
    }

    private static double? ShapeCount(StaticEvaluator eval, string shape)
    {
        if (eval.Value(shape) is not { Rank: 1 } t || t.Data.Any(d => d < 0 || !double.IsFinite(d))) return null;
        return t.Data.Aggregate(1.0, (a, d) => a * d);
    }

    private static double? Scalar(StaticEvaluator eval, string value) => eval.Value(value) is { Data.Length: 1 } t ? t.Data[0] : null;

    /// <summary>Known values are exact; a tensor dimension is at least 0; anything else is unbounded.</summary>
    private static (double Low, double High) Bounds(Graph g, StaticEvaluator eval, string value)
    {
        if (Scalar(eval, value) is { } x) return (x, x);
        return IsDimension(g, value) ? (0, double.PositiveInfinity) : (double.NegativeInfinity, double.PositiveInfinity);
    }

    /// <summary>Whether <paramref name="value"/> is read from a tensor's shape through ops that keep its elements.</summary>
    private static bool IsDimension(Graph g, string value)
    {
        for (var step = 0; step < 64; step++)
        {
            if (g.Producer(value) is not { } p || !p.Is(p.OpType)) return false;
            if (p.OpType is "Shape" or "Size") return true;
            if (p.OpType is not ("Identity" or "Cast" or "Squeeze" or "Unsqueeze" or "Reshape" or "Gather" or "Slice")) return false;
            // A cast to a narrow type could wrap a dimension negative.
            if (p.OpType == "Cast" && (DataType)p.IntAttribute("to", 0) is not (DataType.Int64 or DataType.Int32)) return false;
            value = p.Input(0);
        }
        return false;
    }

    private static int ElementBytes(DataType type) => type switch
    {
        DataType.Double or DataType.Int64 or DataType.Uint64 => 8,
        DataType.Float or DataType.Int32 or DataType.Uint32 => 4,
        DataType.Float16 or DataType.Bfloat16 or DataType.Int16 or DataType.Uint16 => 2,
        _ => 1,
    };
}
