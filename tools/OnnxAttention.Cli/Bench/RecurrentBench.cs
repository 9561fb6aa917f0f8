using OnnxAttention.KernelForms;

namespace OnnxAttention.Cli.Bench;

/// <summary>
/// bench-ops rows for SummaryAttention, HybridAttention and SegmentAttention next to what a model would use instead:
/// ORT's GroupQueryAttention with a KV cache of the same context (a local window of the same width for Hybrid). One
/// decode step at a long context and one prefill from nothing, per shape; every contender of a shape is timed in the
/// same interleaved rounds, so the ratios come from one run.
/// </summary>
public static class RecurrentBench
{
    public sealed record Line(string Section, string Case, string Ours, double OursUs, string Peer, double PeerUs, string Note, double Paired);

    public sealed record Config(bool Summary, bool Hybrid, bool Segment, int Context, int PrefillLength, int Rounds, double BudgetSeconds);

    private const string Gqa = "GroupQueryAttention + KV cache";

    public static IEnumerable<Line> Decode(BenchModels.Shape shape, Config c, int threads, double bandwidth)
    {
        var s = shape with { Seq = 1 };
        var owned = new List<IDisposable>();
        var contenders = new List<SideBySide.Contender>();
        var ours = new List<(string Name, int Index, RecurrentModels.Bench Bench, int Peer)>();
        try
        {
            var (full, fullInputs, fullOutputs, fullShared) = BenchModels.OrtGqaDecode(s, c.Context);
            var fullIndex = -1;
            if (c.Summary || c.Segment)
            {
                fullIndex = Add(contenders, owned, "gqa", new BoundModel(full, fullInputs, fullOutputs, threads, fullShared));
            }
            var localIndex = -1;
            if (c.Hybrid)
            {
                var (local, localInputs, localOutputs, localShared) = BenchModels.OrtGqaDecode(s, c.Context, RecurrentModels.HybridWindow,
                    (float[])fullInputs["past_key"].Item1, (float[])fullInputs["past_value"].Item1);
                localIndex = Add(contenders, owned, "gqa local", new BoundModel(local, localInputs, localOutputs, threads, localShared));
            }
            if (c.Summary)
            {
                var bench = RecurrentModels.Summary(s, c.Context);
                ours.Add(($"SummaryAttention ema x{RecurrentModels.EmaSlots} (state in place)", Add(contenders, owned, "summary", Bind(bench, threads)), bench, fullIndex));
            }
            if (c.Hybrid)
            {
                var bench = RecurrentModels.Hybrid(s, c.Context);
                ours.Add(($"HybridAttention W={RecurrentModels.HybridWindow} linear (state in place)", Add(contenders, owned, "hybrid", Bind(bench, threads)), bench, localIndex));
            }
            if (c.Segment)
            {
                // Half-way through a segment: the step sees the previous segment and half its own, the average case.
                var bench = RecurrentModels.Segment(s, c.Context + RecurrentModels.SegmentLength / 2);
                ours.Add(($"SegmentAttention L={RecurrentModels.SegmentLength} (state in place, offset L/2)", Add(contenders, owned, "segment", Bind(bench, threads)), bench, fullIndex));
            }
            var r = SideBySide.Run(contenders, c.Rounds, c.BudgetSeconds);
            var cacheBytes = 2.0 * s.Batch * s.KvHeads * c.Context * s.HeadDim * sizeof(float);
            foreach (var (name, index, bench, peer) in ours)
            {
                var us = r.MedianMicroseconds(index);
                var rate = bench.StateBytes / (us * 1e-6);
                var peerName = peer == localIndex ? $"GroupQueryAttention local_window_size={RecurrentModels.HybridWindow} + KV cache" : Gqa;
                // The local-window peer needs only its window's rows of the cache (it holds all 16k).
                var peerBytes = peer == localIndex ? cacheBytes * RecurrentModels.HybridWindow / c.Context : cacheBytes;
                var peerRate = peerBytes / (r.MedianMicroseconds(peer) * 1e-6);
                yield return new Line($"decode at context {c.Context}", Name(s), name, us, peerName, r.MedianMicroseconds(peer),
                    $"ours reads {bench.StateBytes / 1e6:F2} MB/step = {rate / 1e9:F1} GB/s = {rate / bandwidth:P0} of copy bandwidth "
                    + $"(above 100%: the state stays in cache); peer needs {peerBytes / 1e6:F0} MB of {cacheBytes / 1e6:F0} MB cache: {peerRate / bandwidth:P0}",
                    r.Speedup(index, peer));
            }
        }
        finally
        {
            foreach (var d in owned) d.Dispose();
        }
    }

    public static IEnumerable<Line> Prefill(BenchModels.Shape shape, Config c, int threads, double matmul)
    {
        var t = c.PrefillLength;
        var s = shape with { Seq = t };
        var owned = new List<IDisposable>();
        var contenders = new List<SideBySide.Contender>();
        var ours = new List<(string Name, int Index, double Flops, int Peer)>();
        try
        {
            var full = c.Summary || c.Segment ? Add(contenders, owned, "gqa", Bind(BenchModels.OrtGqaPrefill(s, -1), threads)) : -1;
            var local = c.Hybrid ? Add(contenders, owned, "gqa local", Bind(BenchModels.OrtGqaPrefill(s, RecurrentModels.HybridWindow), threads)) : -1;
            // 2 FLOP per multiply-add, a dot over d_k and a weighted sum over d_v per (query, visible key).
            double PerPair(long pairs) => 2.0 * s.Batch * s.QHeads * pairs * 2 * s.HeadDim;
            long Causal(int limit) => Enumerable.Range(0, t).Sum(i => (long)Math.Min(i + 1, limit));
            if (c.Summary)
            {
                ours.Add(($"SummaryAttention ema x{RecurrentModels.EmaSlots}", Add(contenders, owned, "summary", Bind(RecurrentModels.Summary(s, 0), threads)),
                    PerPair((long)t * (RecurrentModels.EmaSlots + 1)), full));
            }
            if (c.Hybrid)
            {
                ours.Add(($"HybridAttention W={RecurrentModels.HybridWindow} linear", Add(contenders, owned, "hybrid", Bind(RecurrentModels.Hybrid(s, 0), threads)),
                    PerPair(Causal(RecurrentModels.HybridWindow)), local));
            }
            if (c.Segment)
            {
                var l = RecurrentModels.SegmentLength;
                var pairs = Enumerable.Range(0, t).Sum(i => (long)(i >= l ? l : 0) + i % l + 1);
                ours.Add(($"SegmentAttention L={l}", Add(contenders, owned, "segment", Bind(RecurrentModels.Segment(s, 0), threads)), PerPair(pairs), full));
            }
            var r = SideBySide.Run(contenders, c.Rounds, c.BudgetSeconds);
            var gqaFlops = PerPair(Causal(int.MaxValue));
            foreach (var (name, index, flops, peer) in ours)
            {
                var us = r.MedianMicroseconds(index);
                var peerUs = r.MedianMicroseconds(peer);
                var peerName = peer == local ? $"GroupQueryAttention local_window_size={RecurrentModels.HybridWindow}" : "GroupQueryAttention (causal, no past)";
                var peerPairs = peer == local ? PerPair(Causal(RecurrentModels.HybridWindow + 1)) : gqaFlops;
                yield return new Line($"prefill T={t} from empty", Name(s), name, us, peerName, peerUs,
                    $"ours {flops / (us * 1e-6) / 1e9:F1} GFLOP/s = {flops / (us * 1e-6) / matmul:P0} of ORT MatMul; "
                    + $"peer {peerPairs / (peerUs * 1e-6) / 1e9:F1} GFLOP/s = {peerPairs / (peerUs * 1e-6) / matmul:P0}",
                    r.Speedup(index, peer));
            }
        }
        finally
        {
            foreach (var d in owned) d.Dispose();
        }
    }

    private static int Add(List<SideBySide.Contender> contenders, List<IDisposable> owned, string name, BoundModel model)
    {
        owned.Add(model);
        contenders.Add(new SideBySide.Contender(name, model));
        return contenders.Count - 1;
    }

    internal static BoundModel Bind(RecurrentModels.Bench b, int threads, KernelFormSwitch? forms = null) =>
        new(b.Model, b.Inputs, b.Outputs, threads, b.Shared, forms);

    private static BoundModel Bind((Graphs.Onnx.ModelProto Model, Dictionary<string, (Array, long[])> Inputs, Dictionary<string, (Array, long[])> Outputs) m, int threads) =>
        new(m.Model, m.Inputs, m.Outputs, threads);

    internal static string Name(BenchModels.Shape s) => $"B{s.Batch} H{s.QHeads} d{s.HeadDim}";
}
