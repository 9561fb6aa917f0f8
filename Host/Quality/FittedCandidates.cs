using OnnxAttention.Graphs.Swapping;

namespace OnnxAttention.Host.Quality;

/// <summary>
/// Per-layer candidates for <see cref="PlanSearch"/> made by attention transfer (<see cref="FeatureMapFit"/>): for
/// each layer and each feature-map size, maps fitted on the calibration ids to that layer's softmax attention.
/// </summary>
public static class FittedCandidates
{
    /// <summary>One fit: its layer and how well it reproduces the layer's attention output.</summary>
    public sealed record Fit(int Layer, AttentionRule Rule, FeatureMapFit.Result Result);

    /// <param name="windows">0: linear attention on the features alone; W &gt; 0: a window of W tokens sharing its normaliser with them.</param>
    public static IReadOnlyList<Fit> Make(QualityModel model, long[] ids, int rows, IReadOnlyList<int> projections, IReadOnlyList<int> windows, int steps,
        Action<string>? progress = null, CancellationToken cancel = default)
    {
        if (projections.Count == 0 || windows.Count == 0) return [];
        progress?.Invoke("reading the attention of every layer");
        var layers = AttentionTap.Capture(model, ids, rows);
        var fits = new List<Fit>();
        for (var l = 0; l < layers.Count; l++)
        {
            foreach (var w in windows)
            {
                foreach (var m in projections)
                {
                    progress?.Invoke($"layer {l}: fitting Hedgehog maps of {2 * m} features" + (w > 0 ? $" beside a window of {w}" : ""));
                    var result = new FeatureMapFit(layers[l], m, w).Fit(steps, cancel: cancel);
                    fits.Add(new Fit(l, w == 0 ? new FittedLinearRule(result.Query, result.Key) : new FittedHybridRule(w, result.Query, result.Key, result.Mix), result));
                }
            }
        }
        return fits;
    }

    /// <summary>The fits as <see cref="PlanSearch"/>'s per-layer candidate lists.</summary>
    public static IReadOnlyList<IReadOnlyList<AttentionRule>> PerLayer(IReadOnlyList<Fit> fits, int layers) =>
        Enumerable.Range(0, layers).Select(l => (IReadOnlyList<AttentionRule>)fits.Where(f => f.Layer == l).Select(f => f.Rule).ToList()).ToList();
}
