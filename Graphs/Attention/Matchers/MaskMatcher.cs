using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Attention.Matchers;

/// <summary>
/// Separates the additive mask from the scores and decides whether it can be the exporter's causal mask: a mask
/// computed from tensor shapes only (Shape of the ids, ranges, comparisons) is the causal mask of a model exported
/// without an attention_mask input; a mask that reads the values of a graph input is a padding mask we cannot keep.
/// </summary>
public static class MaskMatcher
{
    public sealed record Split(string Scores, string Mask);

    /// <summary>Scores = Add(scores, mask) in either order; the scores side is the one that reaches a MatMul.</summary>
    public static Split? SplitAdd(Graph g, string value)
    {
        if (g.Producer(value) is not { } add || !add.Is("Add")) return null;
        var a = add.Input(0);
        var b = add.Input(1);
        if (ReachesScoreMatMul(g, a)) return new Split(a, b);
        if (ReachesScoreMatMul(g, b)) return new Split(b, a);
        return null;
    }

    private static bool ReachesScoreMatMul(Graph g, string value)
    {
        var (inner, _) = ScaleMatcher.Peel(g, value);
        return g.Producer(inner)?.Is("MatMul") == true;
    }

    /// <summary>The graph input whose values the mask reads, or null when it depends on shapes only.</summary>
    public static string? DataDependency(Graph g, string mask)
    {
        var pending = new Stack<string>([mask]);
        var seen = new HashSet<string>();
        while (pending.Count > 0)
        {
            var v = pending.Pop();
            if (!seen.Add(v)) continue;
            if (g.IsGraphInput(v)) return v;
            var p = g.Producer(v);
            if (p is null || p.Is("Shape") || p.Is("Size")) continue; // constants, or only the shape is read
            foreach (var input in p.Inputs.Where(i => i.Length > 0)) pending.Push(input);
        }
        return null;
    }
}
