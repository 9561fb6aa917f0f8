using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Swapping;

namespace OnnxAttention.Host.Quality;

/// <summary>
/// Windows that keep token ids and recompute their keys and values (<c>window:W,keys=ids</c>) as plan-search
/// candidates, in the layers where the swap accepts them (those whose keys and values are computed from each token's
/// id and position alone: layer 0 of a decoder). They cost 4 bytes a token instead of a window's keys and values, so
/// a long exact window fits a small budget in that layer; each call recomputes W tokens' keys and values.
/// </summary>
public static class IdWindowCandidates
{
    /// <summary>For each layer, <c>window:W,keys=ids</c> for each of <paramref name="windows"/>, or none where the swap refuses it.</summary>
    public static IReadOnlyList<IReadOnlyList<AttentionRule>> PerLayer(QualityModel model, IReadOnlyList<int> windows)
    {
        var layers = model.Layers;
        var lists = new List<IReadOnlyList<AttentionRule>>();
        for (var l = 0; l < layers; l++)
        {
            var accepted = windows.Count > 0 && Accepts(model, l);
            lists.Add(accepted ? [.. windows.Select(w => (AttentionRule)new RecomputedWindowRule(w))] : []);
        }
        return lists;
    }

    private static bool Accepts(QualityModel model, int layer)
    {
        try
        {
            model.Swap(new LayeredRule([new LayeredRule.Entry(new RecomputedWindowRule(1), [layer]), new LayeredRule.Entry(new SoftmaxRule(), null)]));
            return true;
        }
        catch (GraphException)
        {
            return false;
        }
    }

    /// <summary>Per-layer candidate lists joined layer by layer (either may be null: none).</summary>
    public static IReadOnlyList<IReadOnlyList<AttentionRule>>? Join(IReadOnlyList<IReadOnlyList<AttentionRule>>? a, IReadOnlyList<IReadOnlyList<AttentionRule>>? b) =>
        a is null ? b : b is null ? a : [.. a.Zip(b, (x, y) => (IReadOnlyList<AttentionRule>)[.. x, .. y])];
}
