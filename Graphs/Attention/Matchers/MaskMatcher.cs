using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Attention.Matchers;

/// <summary>
/// Separates the additive mask from the scores and works out what it is. The mask is read as a sum of terms
/// (Add nodes, through Identity and float Casts):
/// <list type="bullet">
/// <item>terms known before run time (constants, or built from static shapes with Range/Less/Where, as ONNX's
/// function-expanded Attention does) are folded and classified: all zero (no mask), causal (0 where key j &lt;= query
/// i, very negative elsewhere) or some other pattern;</item>
/// <item>terms that read the values of a graph input are a data mask (padding, attn_mask);</item>
/// <item>terms computed from shapes only but not foldable (symbolic sequence length) are taken as the exporter's
/// causal mask of a model exported without an attention_mask input, as torch's exporters write it.</item>
/// </list>
/// </summary>
public static class MaskMatcher
{
    public sealed record Split(string Scores, string Mask);

    /// <summary>What the mask amounts to: causal or not, plus the part a replacement must still apply (null: none).</summary>
    public sealed record Classified(bool Causal, string? MaskValue, string? MaskReads, string Description);

    /// <summary>Masked positions hold -inf, the float minimum, or at least this much below zero.</summary>
    public const double MaskedBelow = -1e4;

    /// <summary>Scores = Add(scores, mask) in either order; the scores side is the one that reaches a MatMul.</summary>
    public static Split? SplitAdd(Graph g, string value, StaticEvaluator? eval = null)
    {
        if (g.Producer(value) is not { } add || !add.Is("Add")) return null;
        var a = add.Input(0);
        var b = add.Input(1);
        if (ReachesScoreMatMul(g, a, eval)) return new Split(a, b);
        if (ReachesScoreMatMul(g, b, eval)) return new Split(b, a);
        return null;
    }

    private static bool ReachesScoreMatMul(Graph g, string value, StaticEvaluator? eval)
    {
        if (WhereMaskMatcher.Peel(g, value, eval) is not null) return true;
        var v = PassThroughMatcher.Peel(g, value);
        if (eval is not null) v = PassThroughMatcher.Peel(g, SoftcapMatcher.Peel(g, eval, v).Inner);
        var (inner, _) = ScaleMatcher.Peel(g, v, eval);
        return g.Producer(PassThroughMatcher.Peel(g, inner))?.Is("MatMul") == true;
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

    public static Classified Classify(Graph g, StaticEvaluator eval, string mask)
    {
        var terms = Terms(g, mask);
        var folded = new List<StaticTensor>();
        var data = new List<(string Term, string Input)>();
        var shapeOnly = new List<string>();
        foreach (var term in terms)
        {
            if (eval.Value(term) is { } t) folded.Add(t);
            else if (DataDependency(g, term) is { } input) data.Add((term, input));
            else shapeOnly.Add(term);
        }
        var fixedPart = folded.Count == 0 ? Kind.Zero : Classify(Sum(folded));

        if (data.Count == 0 && shapeOnly.Count == 0)
        {
            return fixedPart switch
            {
                Kind.Zero => new(false, null, null, "none (a zero mask)"),
                Kind.Causal => new(true, null, null, "causal"),
                _ => new(false, mask, null, "a fixed pattern known before run time"),
            };
        }
        if (data.Count == 0 && fixedPart != Kind.Other)
        {
            return new(true, null, null, "causal (computed from shapes only)");
        }
        if (data.Count == 1 && shapeOnly.Count == 0 && fixedPart != Kind.Other)
        {
            var (term, input) = data[0];
            var causal = fixedPart == Kind.Causal;
            return new(causal, term, input, (causal ? "causal + " : "") + $"mask from graph input '{input}'");
        }
        var reads = data.Count > 0 ? data[0].Input : null;
        return new(false, mask, reads, reads is null ? "a pattern computed from shapes" : $"mask combining graph input '{reads}' with other terms");
    }

    private enum Kind
    {
        Zero,
        Causal,
        Other,
    }

    /// <summary>The addends of a sum, looking through Identity and float Casts.</summary>
    private static List<string> Terms(Graph g, string value)
    {
        var v = PassThroughMatcher.Peel(g, value);
        if (g.Producer(v) is { } add && add.Is("Add"))
        {
            return [.. Terms(g, add.Input(0)), .. Terms(g, add.Input(1))];
        }
        return [v];
    }

    private static StaticTensor Sum(List<StaticTensor> parts) =>
        parts.Skip(1).Aggregate(parts[0], (acc, t) => StaticOps.Broadcast(acc, t, acc.Type, (a, b) => a + b) ?? acc);

    private static Kind Classify(StaticTensor t)
    {
        if (t.Data.All(x => x == 0)) return Kind.Zero;
        if (t.Rank < 2) return Kind.Other;
        var rows = t.Shape[^2];
        var cols = t.Shape[^1];
        for (var n = 0L; n < t.Data.Length; n++)
        {
            var i = n / cols % rows;
            var j = n % cols;
            var x = t.Data[n];
            if (j <= i ? x != 0 : !(x <= MaskedBelow)) return Kind.Other;
        }
        return Kind.Causal;
    }
}
