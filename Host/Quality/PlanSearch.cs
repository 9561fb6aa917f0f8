using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;

namespace OnnxAttention.Host.Quality;

/// <summary>
/// Chooses a constant-memory rule per layer within a state budget, by measurement on calibration ids:
/// (1) each candidate rule in one layer at a time, the other layers exact, gives that layer's cost curve (KL against
/// the original at the measured positions) and its exact state bytes (from the swap); (2) the plans whose summed
/// one-layer KLs are least for their bytes (a Pareto front built layer by layer, the budget as the limit) are run
/// whole, and the best measured one is kept; (3) moves of one layer to its next larger or smaller candidate are
/// tried on the best plan while they lower the measured KL within the budget; (4) the bytes still unspent go to the
/// plan's windows (<see cref="Grow"/>). Every layer gets a fixed-size state, so the plan's memory does not grow with
/// the context.
/// </summary>
/// <param name="workers">Runs measured at once (each with its share of the intra-op threads): a small model's run
/// leaves cores idle (session creation, the swap and the comparison are single-threaded).</param>
public sealed partial class PlanSearch(QualityModel model, long[] ids, int rows, int fromPosition, int workers = 1)
{
    /// <summary>One layer's option: the rule, its state bytes per sequence there, and the KL with it alone.</summary>
    public sealed record Option(AttentionRule Rule, long Bytes, double Kl);

    /// <summary>A rule per layer, its state bytes per sequence and the KL measured with the whole plan.</summary>
    public sealed record Plan(IReadOnlyList<Option> Layers, long Bytes, double Kl)
    {
        public AttentionRule Rule => new LayeredRule(Layers.Select((o, i) => new LayeredRule.Entry(o.Rule, [i])).ToList());
    }

    /// <summary>Runs of the model so far (each is one teacher-forced pass over the calibration ids).</summary>
    public int Runs => _runs;

    /// <summary>Wall time spent so far swapping, running (session creation included) and comparing, summed over the runs.</summary>
    public (TimeSpan Swap, TimeSpan Run, TimeSpan Compare) Spent => (TimeSpan.FromTicks(_swapTicks), TimeSpan.FromTicks(_runTicks), TimeSpan.FromTicks(_compareTicks));

    private int _runs;
    private long _swapTicks, _runTicks, _compareTicks;
    private readonly Lazy<float[]> _original = new(() => model.Logits(new SoftmaxRule(), ids, rows));
    private readonly object _progressLock = new();

    /// <summary>
    /// The default candidates: windows of 1 to 384 tokens, windows with 4 sink tokens, windows with a mean slot of
    /// the evicted tokens (hybrid compress=mean) or a linear-attention memory of them (compress=linear), and linear
    /// attention.
    /// </summary>
    public static IReadOnlyList<AttentionRule> DefaultCandidates(IReadOnlyList<TensorProto.Types.DataType> stateTypes) =>
        InStateTypes(DefaultCandidates(), stateTypes);

    /// <summary>
    /// Each rule with its state kept in each of <paramref name="stateTypes"/> (float32, float16, bfloat16, int8) that
    /// it can keep it in: int8 leaves out the rules without a cache of keys and values (linear attention), which other
    /// types in the list still offer.
    /// </summary>
    public static IReadOnlyList<AttentionRule> InStateTypes(IEnumerable<AttentionRule> rules, IReadOnlyList<TensorProto.Types.DataType> stateTypes) =>
        [.. stateTypes.SelectMany(t => rules.Where(r => StateTypeRule.Refusal(r, t) is null).Select(r => StateTypeRule.Of(r, t)))];

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
        var original = _original.Value;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (swapped, _) = model.Swap(rule);
        Interlocked.Add(ref _swapTicks, clock.Elapsed.Ticks);
        clock.Restart();
        var threads = workers <= 1 ? model.IntraOpThreads : Math.Max(1, (model.IntraOpThreads > 0 ? model.IntraOpThreads : Environment.ProcessorCount) / workers);
        var logits = QualityModel.Run(swapped, ids, rows, threads);
        Interlocked.Add(ref _runTicks, clock.Elapsed.Ticks);
        clock.Restart();
        Interlocked.Increment(ref _runs);
        var c = NextTokenComparison.Compare(original, logits, ids, rows);
        var kl = c.Bucket(fromPosition, c.Positions).Kl;
        Interlocked.Add(ref _compareTicks, clock.Elapsed.Ticks);
        return kl;
    }

    /// <summary>Measures every rule, <c>workers</c> at a time; the KLs in the rules' order.</summary>
    public double[] MeasureAll(IReadOnlyList<AttentionRule> rules, Func<int, string>? describe = null, Action<string>? progress = null)
    {
        _ = _original.Value;
        var kl = new double[rules.Count];
        Parallel.For(0, rules.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, workers) }, i =>
        {
            if (progress is not null)
            {
                lock (_progressLock) progress(describe?.Invoke(i) ?? rules[i].Spelling);
            }
            kl[i] = Measure(rules[i]);
        });
        return kl;
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
        var jobs = new List<(int Layer, int Candidate)>();
        for (var l = 0; l < layers; l++)
        {
            var room = budget - (cheapest.Sum() - cheapest[l]);
            for (var c = 0; c < rules[l].Count; c++)
            {
                if (bytes[l][c] <= room) jobs.Add((l, c));
            }
        }
        var kls = MeasureAll(jobs.Select(j => (AttentionRule)OneLayer(rules[j.Layer][j.Candidate], j.Layer)).ToList(),
            i => $"layer {jobs[i].Layer}: {rules[jobs[i].Layer][jobs[i].Candidate].Spelling}", progress);
        var curves = new List<IReadOnlyList<Option>>();
        for (var l = 0; l < layers; l++)
        {
            var options = jobs.Select((j, i) => (j, i)).Where(x => x.j.Layer == l)
                .Select(x => new Option(rules[l][x.j.Candidate], bytes[l][x.j.Candidate], kls[x.i])).ToList();
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
    /// <param name="grow">give the bytes the best plan leaves unspent to its windows (<see cref="Grow"/>)</param>
    public Plan Search(IReadOnlyList<AttentionRule> candidates, long budget, int wholePlans = 4, int maxMoves = 24, Action<string>? progress = null,
        IReadOnlyList<IReadOnlyList<AttentionRule>>? perLayer = null, bool grow = true)
    {
        var curves = LayerCurves(candidates, budget, progress, perLayer);
        var front = Front(curves, budget).Take(wholePlans).Select(p => new Plan(p.Layers, p.Bytes, 0)).ToList();
        var frontKl = MeasureAll(front.Select(p => p.Rule).ToList(), i => $"plan {front[i].Rule.Spelling}", progress);
        Plan? best = null;
        for (var i = 0; i < front.Count; i++)
        {
            var plan = front[i] with { Kl = frontKl[i] };
            if (best is null || plan.Kl < best.Kl) best = plan;
        }
        // Neighbours of the best plan: one layer a step up its curve, alone if it fits, or with another layer a
        // step down to pay for it. The measured KL decides; repeat from the better plan.
        var tried = new HashSet<string>();
        var moves = 0;
        while (best is not null && moves < maxMoves)
        {
            Plan? improved = null;
            var round = new List<Plan>();
            foreach (var layers in Neighbours(curves, best.Layers))
            {
                var bytes = layers.Sum(o => o.Bytes);
                if (bytes > budget) continue;
                var plan = new Plan(layers, bytes, 0);
                if (!tried.Add(plan.Rule.Spelling)) continue;
                if (++moves > maxMoves) break;
                round.Add(plan);
            }
            var roundKl = MeasureAll(round.Select(p => p.Rule).ToList(), i => $"move {round[i].Rule.Spelling}", progress);
            for (var i = 0; i < round.Count; i++)
            {
                var plan = round[i] with { Kl = roundKl[i] };
                if (plan.Kl < (improved ?? best).Kl) improved = plan;
            }
            if (improved is null) break;
            best = improved;
        }
        if (best is null) throw new ArgumentException($"no plan fits --state-budget {budget}");
        return grow ? Grow(best, budget, progress) : best;
    }
}
