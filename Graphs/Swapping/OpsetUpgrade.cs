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
        // ONNX releases opset 23 with IR version 11; checkers refuse a newer opset under an older IR version.
        if (required >= 23 && model.IrVersion < 11)
        {
            message += $" (IR version {model.IrVersion} -> 11)";
            model.IrVersion = 11;
        }
        return message;
    }

    private static IEnumerable<NodeProto> AllNodes(GraphProto g) =>
        g.Node.SelectMany(n => n.Attribute.Where(a => a.G is not null).SelectMany(a => AllNodes(a.G)).Prepend(n));
}
