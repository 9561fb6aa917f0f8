using System.Globalization;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Quality;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// calibrate --plan: a rule per layer given by the user instead of searched for, where <c>linear-hedgehog:M</c> and
/// <c>hybrid-hedgehog:W,M</c> (not runnable rules on their own) mean "fit Hedgehog maps of size M here, beside a window
/// of W tokens for the hybrid". Spelled like --attention's per-layer rules: RULE@LAYERS;... with LAYERS * or 0,2-4.
/// </summary>
public sealed class CalibratePlan
{
    private readonly (string Spelling, int Window, int Projections, AttentionRule? Rule, TensorProto.Types.DataType State)[] _layers;

    private CalibratePlan((string, int, int, AttentionRule?, TensorProto.Types.DataType)[] layers) => _layers = layers;

    public static CalibratePlan Parse(string text, int layers)
    {
        var chosen = new (string, int, int, AttentionRule?, TensorProto.Types.DataType)?[layers];
        (string, int, int, AttentionRule?, TensorProto.Types.DataType)? rest = null;
        foreach (var part in text.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var at = part.LastIndexOf('@');
            if (at <= 0) throw new ArgumentException($"--plan: '{part}' is not RULE@LAYERS (LAYERS: * or a list like 0,2-4)");
            var rule = Rule(part[..at].Trim());
            var where = part[(at + 1)..].Trim();
            if (where == "*")
            {
                rest = rest is null ? rule : throw new ArgumentException($"--plan '{text}' has two entries for '*'");
                continue;
            }
            foreach (var layer in Layers(where, layers, text))
            {
                if (chosen[layer] is not null) throw new ArgumentException($"--plan '{text}' gives layer {layer} two rules");
                chosen[layer] = rule;
            }
        }
        return new CalibratePlan([.. chosen.Select((c, l) => c ?? rest ?? throw new ArgumentException($"--plan '{text}' gives layer {l} no rule; name it or add RULE@*"))]);
    }

    private static (string, int, int, AttentionRule?, TensorProto.Types.DataType) Rule(string spelling)
    {
        // A fitted rule may keep its state in 16 or 8 bits too (RULE,state=float16|int8): the fit is the same, the swap rounds.
        var (bare, state) = StateTypeRule.Split(spelling.ToLowerInvariant(), spelling);
        int Number(string s) => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is > 0 and <= 1 << 16 ? n
            : throw new ArgumentException($"--plan: '{spelling}' needs positive sizes");
        if (bare.StartsWith(FittedLinearRule.Prefix, StringComparison.Ordinal))
        {
            // Refused before fitting: linear attention keeps sums, which int8 does not quantise.
            return state == TensorProto.Types.DataType.Int8
                ? throw new ArgumentException($"--plan: '{spelling}' keeps no cache of keys and values, only sums; state=int8 applies to windows and hybrids (use state=float16)")
                : (spelling, 0, Number(bare[FittedLinearRule.Prefix.Length..]), null, state);
        }
        if (bare.StartsWith(FittedHybridRule.Prefix, StringComparison.Ordinal))
        {
            var sizes = bare[FittedHybridRule.Prefix.Length..].Split(',');
            return sizes.Length == 2 ? (spelling, Number(sizes[0]), Number(sizes[1]), null, state) : throw new ArgumentException($"--plan: '{spelling}' is not hybrid-hedgehog:W,M");
        }
        var rule = AttentionRule.Parse(spelling);
        return rule is LayeredRule ? throw new ArgumentException($"--plan: '{spelling}' nests a per-layer rule") : (spelling, 0, 0, rule, state);
    }

    private static IEnumerable<int> Layers(string list, int layers, string text)
    {
        foreach (var item in list.Split(','))
        {
            var ends = item.Split('-');
            if (ends.Length is < 1 or > 2 || !ends.All(e => int.TryParse(e, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v < layers))
            {
                throw new ArgumentException($"--plan '{text}': '{item}' is not a layer or range of layers 0 to {layers - 1}");
            }
            var (from, to) = (int.Parse(ends[0], CultureInfo.InvariantCulture), int.Parse(ends[^1], CultureInfo.InvariantCulture));
            for (var l = from; l <= to; l++) yield return l;
        }
    }

    /// <summary>Fits the plan's Hedgehog layers to the original's attention (as --fit does), measures it and checks the budget.</summary>
    public PlanSearch.Plan Make(QualityModel quality, PlanSearch search, long[] ids, int rows, int fitSteps, long budget, Action<string>? progress)
    {
        IReadOnlyList<LayerAttention>? taps = null;
        var rules = new AttentionRule[_layers.Length];
        for (var l = 0; l < _layers.Length; l++)
        {
            var (spelling, window, m, rule, state) = _layers[l];
            if (rule is null)
            {
                progress?.Invoke("reading the attention of every layer");
                taps ??= AttentionTap.Capture(quality, ids, rows);
                progress?.Invoke($"layer {l}: fitting {spelling}");
                var fit = new FeatureMapFit(taps[l], m, window).Fit(fitSteps);
                rule = StateTypeRule.Of(window == 0 ? new FittedLinearRule(fit.Query, fit.Key) : new FittedHybridRule(window, fit.Query, fit.Key, fit.Mix), state);
            }
            rules[l] = rule;
        }
        var layered = new LayeredRule([.. rules.Select((r, l) => new LayeredRule.Entry(r, [l]))]);
        var report = quality.Swap(layered).Report;
        if (report.StateBytesPerSequence > budget)
        {
            throw new ArgumentException($"--plan takes {report.StateBytesPerSequence} bytes of state per sequence, over --state-budget {budget}");
        }
        var options = rules.Select((r, l) =>
        {
            progress?.Invoke($"layer {l} alone: {r.Spelling}");
            var alone = new LayeredRule([new LayeredRule.Entry(r, [l]), new LayeredRule.Entry(new SoftmaxRule(), null)]);
            return new PlanSearch.Option(r, report.Layers[l].StateBytesPerSequence, search.Measure(alone));
        }).ToList();
        progress?.Invoke($"plan {layered.Spelling}");
        return new PlanSearch.Plan(options, report.StateBytesPerSequence, search.Measure(layered));
    }
}
