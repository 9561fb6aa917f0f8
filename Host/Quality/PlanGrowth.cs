using OnnxAttention.Graphs.Swapping;

namespace OnnxAttention.Host.Quality;

public sealed partial class PlanSearch
{
    /// <summary>One window grown by <see cref="Grow"/>: the layer, its window before and after, the plan's KL before and after.</summary>
    public sealed record Growth(int Layer, int From, int To, double KlBefore, double KlAfter);

    /// <summary>What <see cref="Grow"/> changed, in order (empty when it kept the plan).</summary>
    public IReadOnlyList<Growth> Grown => _grown;

    private readonly List<Growth> _grown = [];

    /// <summary>
    /// Gives the bytes a plan leaves under the budget to its windows. The candidates' windows come in steps (and the
    /// largest stops at a few hundred tokens), so a plan chosen among them usually leaves part of the budget unspent,
    /// while a window's bytes grow one token at a time. Each round tries every windowed layer grown by as many tokens
    /// as the unspent bytes pay for, measures those plans whole, and keeps the best if it lowers the measured KL; it
    /// stops when none does or nothing is left. A window is not grown past the calibration's length: beyond it the
    /// measurement cannot tell a difference, and the bytes may do more in another layer.
    /// </summary>
    public Plan Grow(Plan plan, long budget, Action<string>? progress = null)
    {
        var length = ids.Length / rows;
        while (true)
        {
            var left = budget - plan.Bytes;
            var grown = new List<(int Layer, Option Option)>();
            for (var l = 0; l < plan.Layers.Count && left > 0; l++)
            {
                var now = plan.Layers[l];
                if (IWindowedRule.WindowOf(now.Rule) is not { } window || window >= length) continue;
                var perToken = LayerBytes(IWindowedRule.Resized(now.Rule, window + 1)!, l) - now.Bytes;
                if (perToken <= 0) continue;
                var wider = (int)Math.Min(length, window + left / perToken);
                if (wider <= window) continue;
                var rule = IWindowedRule.Resized(now.Rule, wider)!;
                var bytes = LayerBytes(rule, l);
                // Bytes are linear in the window for every windowed rule; the swap's own count has the last word.
                if (bytes - now.Bytes <= left) grown.Add((l, new Option(rule, bytes, double.NaN)));
            }
            if (grown.Count == 0) return plan;
            var plans = grown.Select(g => With(plan, g.Layer, g.Option)).ToList();
            var kls = MeasureAll(plans.Select(p => p.Rule).ToList(), i => $"grow {plans[i].Rule.Spelling}", progress);
            var best = Enumerable.Range(0, plans.Count).MinBy(i => kls[i]);
            if (!(kls[best] < plan.Kl)) return plan;
            var (layer, option) = grown[best];
            progress?.Invoke($"layer {layer} alone: {option.Rule.Spelling}");
            _grown.Add(new Growth(layer, IWindowedRule.WindowOf(plan.Layers[layer].Rule)!.Value, IWindowedRule.WindowOf(option.Rule)!.Value, plan.Kl, kls[best]));
            plan = With(plan, layer, option with { Kl = Measure(OneLayer(option.Rule, layer)) }) with { Kl = kls[best] };
        }
    }

    private long LayerBytes(AttentionRule rule, int layer) => model.Swap(OneLayer(rule, layer)).Report.Layers[layer].StateBytesPerSequence;

    private static Plan With(Plan plan, int layer, Option option)
    {
        var layers = plan.Layers.ToList();
        layers[layer] = option;
        return new Plan(layers, layers.Sum(o => o.Bytes), 0);
    }
}
