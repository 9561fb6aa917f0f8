using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Attention.Matchers;

/// <summary>
/// A mask written as a selection rather than a sum: Where(keep, scores, fill), as GPT-2 applies its causal bias
/// buffer (torch.where(causal_mask, attn_weights, finfo.min)). The scores side is the one that reaches the score
/// MatMul; what it amounts to is worked out by <see cref="MaskProbe"/>.
/// </summary>
public static class WhereMaskMatcher
{
    public sealed record Split(string Scores, string Keep, string Fill);

    public static Split? Peel(Graph g, string value, StaticEvaluator? eval)
    {
        if (g.Producer(PassThroughMatcher.Peel(g, value)) is not { } where || !where.Is("Where")) return null;
        var x = PassThroughMatcher.Peel(g, where.Input(1));
        if (eval is not null) x = PassThroughMatcher.Peel(g, SoftcapMatcher.Peel(g, eval, x).Inner);
        var (inner, _) = ScaleMatcher.Peel(g, x, eval);
        return g.Producer(PassThroughMatcher.Peel(g, inner))?.Is("MatMul") == true ? new Split(where.Input(1), where.Input(0), where.Input(2)) : null;
    }
}
