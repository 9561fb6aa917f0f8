using OnnxAttention.Graphs.Swapping;

namespace OnnxAttention.Host.Quality;

/// <summary>
/// Chooses a constant-memory rule per layer within a state budget, by measurement on calibration ids:
/// (1) each candidate rule in one layer at a time, the other layers exact, gives that layer's cost curve (KL against
/// the original at the measured positions) and its exact state bytes (from the swap); (2) the plans whose summed
/// one-layer KLs are least for their bytes (a Pareto front built layer by layer, the budget as the limit) are run
/// whole, and the best measured one is kept; (3) moves of one layer to its next larger or smaller candidate are
/// tried on the best plan while they lower the measured KL within the budget. Every layer gets a fixed-size state, so
/// the plan's memory does not grow with the context.
/// </summary>
public sealed class PlanSearch(QualityModel model, long[] ids, int rows, int fromPosition)
{
    /// <summary>One layer's option: the rule, its state bytes per sequence there, and the KL with it alone.</summary>
    public sealed record Option(AttentionRule Rule, long Bytes, double Kl);

    /// <summary>A rule per layer, its state bytes per sequence and the KL measured with the whole plan.</summary>
    public sealed record Plan(IReadOnlyList<Option> Layers, long Bytes, double Kl)
    {
        public AttentionRule Rule => new LayeredRule(Layers.Select((o, i) => new LayeredRule.Entry(o.Rule, [i])).ToList());
    }

    /// <summary>Runs of the model so far (each is one teacher-forced pass over the calibration ids).</summary>
    public int Runs { get; private set; }

    private float[]? _original;

    /// <summary>
    /// The default candidates: windows of 1 to 384 tokens, windows with 4 sink tokens, windows with a mean slot of
    /// the evicted tokens (hybrid compress=mean) or a linear-attention memory of them (compress=linear), and linear
    /// attention.
    /// </summary>
    public static IReadOnlyList<AttentionRule> DefaultCandidates() =>
    [
        .. new[] { 1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 384 }.Select(w => (AttentionRule)new WindowRule(w, 0)),
        .. new[] { 2, 4, 8, 16, 32, 64, 128 }.Select(w => (AttentionRule)new WindowRule(w, 4)),
        .. new[] { 2, 4, 8, 16, 32, 64, 128 }.Select(w => (AttentionRule)new HybridRule(w, "mean")),
        .. new[] { 4, 16, 32, 64, 128, 192 }.Select(w => (AttentionRule)new HybridRule(w, "linear")),
        new LinearRule("elu_plus_one"),
    ];

    /// <summary>Mean KL(original ‖ swapped) over positions from <c>fromPosition</c> on, for a rule (one or per layer).</summary>
    public double Measure(AttentionRule rule)
    {
        _original ??= model.Logits(new SoftmaxRule(), ids, rows);
        var logits = model.Logits(rule, ids, rows);
        Runs++;
        var c = NextTokenComparison.Compare(_original, logits, ids, rows);
        return c.Bucket(fromPosition, c.Positions).Kl;
    }

    /// <summary>
    /// Each candidate in each layer alone, skipping those that cannot fit beside the cheapest choice elsewhere;
    /// <paramref name="perLayer"/> adds candidates that belong to one layer (feature maps fitted to it).
    /// </summary>
    public IReadOnlyList<IReadOnlyList<Option>> LayerCurves(IReadOnlyList<AttentionRule> candidates, long budget, Action<string>? progress = null,
        IReadOnlyList<IReadOnlyList<AttentionRule>>? perLayer = null)
    {
        var layers = model.Layers;
        if (perLayer is not null && perLayer.Count != layers) throw new ArgumentException($"{perLayer.Count} lists of layer candidates for {layers} layers");
        var shared = new long[layers, candidates.Count];
        for (var c = 0; c < candidates.Count; c++)
        {
            var report = model.Swap(candidates[c]).Report;
            for (var l = 0; l < layers; l++) shared[l, c] = report.Layers[l].StateBytesPerSequence;
        }
        var rules = Enumerable.Range(0, layers).Select(l => candidates.Concat(perLayer?[l] ?? []).ToList()).ToList();
        var bytes = rules.Select((list, l) => list.Select((r, c) => c < candidates.Count ? shared[l, c]
            : model.Swap(OneLayer(r, l)).Report.Layers[l].StateBytesPerSequence).ToList()).ToList();
        var cheapest = bytes.Select(b => b.Min()).ToArray();
        if (cheapest.Sum() > budget)
        {
            throw new ArgumentException($"no plan fits --state-budget {budget}: the cheapest candidate in every layer already takes {cheapest.Sum()} bytes per sequence");
        }
        var curves = new List<IReadOnlyList<Option>>();
        for (var l = 0; l < layers; l++)
        {
            var room = budget - (cheapest.Sum() - cheapest[l]);
            var options = new List<Option>();
            for (var c = 0; c < rules[l].Count; c++)
            {
                if (bytes[l][c] > room) continue;
                progress?.Invoke($"layer {l}: {rules[l][c].Spelling}");
                options.Add(new Option(rules[l][c], bytes[l][c], Measure(OneLayer(rules[l][c], l))));
            }
            // An option that costs more than another and is no better is never worth taking.
            curves.Add(options.Where(o => !options.Any(p => p != o && p.Bytes <= o.Bytes && p.Kl <= o.Kl && (p.Bytes < o.Bytes || p.Kl < o.Kl)))
                .OrderBy(o => o.Bytes).ToList());
        }
        return curves;
    }

    private static LayeredRule OneLayer(AttentionRule rule, int layer) =>
        new([new LayeredRule.Entry(rule, [layer]), new LayeredRule.Entry(new SoftmaxRule(), null)]);

    /// <summary>Plans within the budget with the least summed one-layer KL for their bytes, best first.</summary>
    public static IReadOnlyList<(IReadOnlyList<Option> Layers, long Bytes, double SummedKl)> Front(IReadOnlyList<IReadOnlyList<Option>> curves, long budget)
    {
        var front = new List<(List<Option> Layers, long Bytes, double Kl)> { ([], 0, 0) };
        foreach (var curve in curves)
        {
            var next = front.SelectMany(p => curve.Select(o => (Layers: p.Layers.Append(o).ToList(), Bytes: p.Bytes + o.Bytes, Kl: p.Kl + o.Kl)))
                .Where(p => p.Bytes <= budget).OrderBy(p => p.Bytes).ThenBy(p => p.Kl).ToList();
            // Keep the Pareto front: each plan must beat every cheaper one.
            front = [];
            var best = double.PositiveInfinity;
            foreach (var p in next)
            {
                if (p.Kl < best)
                {
                    front.Add(p);
                    best = p.Kl;
                }
            }
        }
        return front.OrderBy(p => p.Kl).Select(p => ((IReadOnlyList<Option>)p.Layers, p.Bytes, p.Kl)).ToList();
    }

    private static IEnumerable<List<Option>> Neighbours(IReadOnlyList<IReadOnlyList<Option>> curves, IReadOnlyList<Option> plan)
    {
        int At(int l) => curves[l].ToList().FindIndex(o => o.Rule == plan[l].Rule);
        for (var up = 0; up < curves.Count; up++)
        {
            if (At(up) + 1 >= curves[up].Count) continue;
            var raised = plan.ToList();
            raised[up] = curves[up][At(up) + 1];
            yield return raised;
            for (var down = 0; down < curves.Count; down++)
            {
                if (down == up || At(down) == 0) continue;
                var traded = raised.ToList();
                traded[down] = curves[down][At(down) - 1];
                yield return traded;
            }
        }
    }

    /// <summary>The whole search: curves, the best few front plans measured whole, then one-layer moves.</summary>
    public Plan Search(IReadOnlyList<AttentionRule> candidates, long budget, int wholePlans = 4, int maxMoves = 24, Action<string>? progress = null,
        IReadOnlyList<IReadOnlyList<AttentionRule>>? perLayer = null)
    {
        var curves = LayerCurves(candidates, budget, progress, perLayer);
        Plan? best = null;
        foreach (var (layers, bytes, _) in Front(curves, budget).Take(wholePlans))
        {
            var plan = new Plan(layers, bytes, 0);
            progress?.Invoke($"plan {plan.Rule.Spelling}");
            plan = plan with { Kl = Measure(plan.Rule) };
            if (best is null || plan.Kl < best.Kl) best = plan;
        }
        // Neighbours of the best plan: one layer a step up its curve, alone if it fits, or with another layer a
        // step down to pay for it. The measured KL decides; repeat from the better plan.
        var tried = new HashSet<string>();
        var moves = 0;
        while (best is not null && moves < maxMoves)
        {
            Plan? improved = null;
            foreach (var layers in Neighbours(curves, best.Layers))
            {
                var bytes = layers.Sum(o => o.Bytes);
                if (bytes > budget) continue;
                var plan = new Plan(layers, bytes, 0);
                if (!tried.Add(plan.Rule.Spelling)) continue;
                if (++moves > maxMoves) break;
                progress?.Invoke($"move {plan.Rule.Spelling}");
                plan = plan with { Kl = Measure(plan.Rule) };
                if (plan.Kl < (improved ?? best).Kl) improved = plan;
            }
            if (improved is null) break;
            best = improved;
        }
        return best ?? throw new ArgumentException($"no plan fits --state-budget {budget}");
    }
}
