using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Optimum's merged decoder (decoder_model_merged.onnx, what transformers.js and many published ONNX repositories
/// ship): one If on a boolean input (use_cache_branch) whose two branches are the decoder without and with a KV
/// cache, each with the attention inside. A swapped model carries its own state, so only the branch that reads the
/// cache is needed: it is inlined into the main graph and the boolean input goes. With an empty cache (past length
/// 0) that branch computes what the other one does, which is how Optimum itself runs the first step.
/// </summary>
public static class MergedDecoder
{
    /// <summary>Inlines the cache branch; returns what changed, or null when the model is not a merged decoder.</summary>
    public static string? Collapse(ModelProto model)
    {
        var g = model.Graph;
        var ifs = g.Node.Where(n => n.OpType == "If" && n.Domain is "" or "ai.onnx").ToList();
        if (ifs.Count != 1) return null;
        var node = ifs[0];
        var condition = g.Input.FirstOrDefault(i => i.Name == node.Input[0] && i.Type?.TensorType?.ElemType == (int)TensorProto.Types.DataType.Bool);
        if (condition is null) return null;
        var then = node.Attribute.FirstOrDefault(a => a.Name == "then_branch")?.G;
        var otherwise = node.Attribute.FirstOrDefault(a => a.Name == "else_branch")?.G;
        if (then is null || otherwise is null) return null;

        // The cache branch is the one that reads the rank-4 inputs (past_key_values.N.key/value).
        var caches = g.Input.Where(i => i.Type?.TensorType?.Shape?.Dim.Count == 4).Select(i => i.Name).ToHashSet();
        if (caches.Count == 0) return null;
        var thenReads = Reads(then).Overlaps(caches);
        var elseReads = Reads(otherwise).Overlaps(caches);
        if (thenReads == elseReads)
        {
            throw new GraphException($"merged decoder: '{node.Name}' has {(thenReads ? "both" : "neither")} branches reading the KV cache inputs; cannot tell the cache branch");
        }
        var branch = thenReads ? then : otherwise;
        if (branch.Output.Count != node.Output.Count)
        {
            throw new GraphException($"merged decoder: the cache branch of '{node.Name}' has {branch.Output.Count} outputs for the If's {node.Output.Count}");
        }
        var taken = g.Node.Where(n => n != node).SelectMany(n => n.Output).Concat(g.Initializer.Select(t => t.Name)).Concat(g.Input.Select(i => i.Name)).ToHashSet();
        if (branch.Node.SelectMany(n => n.Output).Concat(branch.Initializer.Select(t => t.Name)).FirstOrDefault(taken.Contains) is { } clash)
        {
            throw new GraphException($"merged decoder: the cache branch defines '{clash}', which the main graph already has");
        }

        var at = g.Node.IndexOf(node);
        g.Node.RemoveAt(at);
        var inlined = branch.Node.ToList();
        for (var i = 0; i < node.Output.Count; i++)
        {
            if (node.Output[i].Length == 0 || node.Output[i] == branch.Output[i].Name) continue;
            var identity = new NodeProto { OpType = "Identity", Name = $"{node.Name}.out{i}" };
            identity.Input.Add(branch.Output[i].Name);
            identity.Output.Add(node.Output[i]);
            inlined.Add(identity);
        }
        foreach (var (n, k) in inlined.Select((n, k) => (n, k))) g.Node.Insert(at + k, n);
        g.Initializer.AddRange(branch.Initializer);
        g.ValueInfo.AddRange(branch.ValueInfo);
        if (!g.Node.Any(n => n.Input.Contains(condition.Name))) g.Input.Remove(condition);
        return $"merged decoder: the cache branch of '{node.Name}' inlined (input '{condition.Name}' {(g.Input.Contains(condition) ? "kept" : "removed")}); " +
            "the swapped model is one decoder with state";
    }

    /// <summary>Names a subgraph reads from outside itself (its nodes' inputs, nested subgraphs included).</summary>
    private static HashSet<string> Reads(GraphProto g)
    {
        var reads = new HashSet<string>();
        foreach (var n in g.Node)
        {
            reads.UnionWith(n.Input.Where(i => i.Length > 0));
            foreach (var sub in n.Attribute.Where(a => a.G is not null)) reads.UnionWith(Reads(sub.G));
        }
        return reads;
    }
}
