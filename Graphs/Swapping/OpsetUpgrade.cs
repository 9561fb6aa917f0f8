using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Raises a model's default-domain (ai.onnx) opset when a replacement needs a newer operator (Attention is
/// opset 23). Between opsets 13 and 24 most operators only gained element types, which leaves existing nodes
/// meaning the same; the few whose attributes or semantics changed are refused rather than silently reinterpreted.
/// </summary>
public static class OpsetUpgrade
{
    /// <summary>Operators whose meaning changed at the given opset (a node written for an older one would change).</summary>
    private static readonly Dictionary<string, int> ChangedAt = new()
    {
        ["DFT"] = 20,                // axis moved from an attribute to an input
        ["GridSample"] = 20,         // modes renamed (bilinear -> linear, bicubic -> cubic)
        ["GroupNormalization"] = 21, // scale and bias became per channel instead of per group
    };

    /// <summary>Returns a sentence saying what changed, or null when the opset was already high enough.</summary>
    public static string? Apply(ModelProto model, int required)
    {
        if (required <= 0) return null;
        var import = model.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx");
        if (import is null)
        {
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = required });
            return $"default-domain opset {required} imported (the model declared none)";
        }
        if (import.Version >= required) return null;
        var from = import.Version;
        var blocker = AllNodes(model.Graph).FirstOrDefault(n => (n.Domain is "" or "ai.onnx") && ChangedAt.TryGetValue(n.OpType, out var at) && from < at && required >= at);
        if (blocker is not null)
        {
            throw new GraphException($"the replacement needs default-domain opset {required}, but the model is opset {from} and its {blocker.OpType} " +
                $"node '{blocker.Name}' changed meaning at opset {ChangedAt[blocker.OpType]}; convert the model to opset {required} first");
        }
        import.Version = required;
        var message = $"default-domain opset raised from {from} to {required}";
        if (from < 18 && required >= 18 && MoveReduceAxes(model.Graph) is var moved && moved > 0)
        {
            message += $" ({moved} reduction(s) given their axes as an input, as opset 18 wants)";
        }
        // ONNX releases opset 23 with IR version 11; checkers refuse a newer opset under an older IR version.
        if (required >= 23 && model.IrVersion < 11)
        {
            message += $" (IR version {model.IrVersion} -> 11)";
            model.IrVersion = 11;
        }
        return message;
    }

    /// <summary>Reductions whose axes moved from an attribute to an input at opset 18 (ReduceSum already at 13).</summary>
    private static readonly HashSet<string> ReduceAxesAt18 =
        ["ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"];

    /// <summary>Rewrites axes attributes of those reductions as int64 initializer inputs; returns how many.</summary>
    private static int MoveReduceAxes(GraphProto g)
    {
        var moved = 0;
        foreach (var node in g.Node)
        {
            foreach (var sub in node.Attribute.Where(a => a.G is not null)) moved += MoveReduceAxes(sub.G);
            if (node.Domain is not ("" or "ai.onnx") || !ReduceAxesAt18.Contains(node.OpType)) continue;
            if (node.Attribute.FirstOrDefault(a => a.Name == "axes") is not { } axes) continue;
            var name = $"{node.Name}.axes";
            while (g.Initializer.Any(t => t.Name == name) || g.Node.Any(n => n.Output.Contains(name))) name += "_";
            var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
            tensor.Dims.Add(axes.Ints.Count);
            tensor.Int64Data.AddRange(axes.Ints);
            g.Initializer.Add(tensor);
            node.Attribute.Remove(axes);
            while (node.Input.Count < 1) node.Input.Add("");
            node.Input.Insert(1, name);
            while (node.Input.Count > 2) node.Input.RemoveAt(2);
            moved++;
        }
        return moved;
    }

    private static IEnumerable<NodeProto> AllNodes(GraphProto g) =>
        g.Node.SelectMany(n => n.Attribute.Where(a => a.G is not null).SelectMany(a => AllNodes(a.G)).Prepend(n));
}
