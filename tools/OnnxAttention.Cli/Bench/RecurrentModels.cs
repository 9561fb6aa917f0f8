using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Cli.Bench;

/// <summary>
/// One-node models of SummaryAttention, HybridAttention and SegmentAttention for bench-ops, with their state bound in
/// place (the present float state is the past buffer, as a decoder host binds it; the position stays fixed, so every
/// timed call does the same work) or, for a prefill, started from nothing.
/// </summary>
public static class RecurrentModels
{
    private const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;
    private const TensorProto.Types.DataType I64 = TensorProto.Types.DataType.Int64;

    /// <summary>The configurations timed: what each operator keeps, chosen as a model would set it.</summary>
    public const int EmaSlots = 4, HybridWindow = 1024, SegmentLength = 512;

    public sealed record Bench(
        ModelProto Model,
        Dictionary<string, (Array, long[])> Inputs,
        Dictionary<string, (Array, long[])> Outputs,
        Dictionary<string, string> Shared,
        double StateBytes);

    /// <summary>SummaryAttention, multi-scale EMA of <see cref="EmaSlots"/> slots, after <paramref name="past"/> tokens (0: no past state).</summary>
    public static Bench Summary(BenchModels.Shape s, long past)
    {
        var o = new SummaryAttentionNode.Options(s.QHeads, s.KvHeads, "ema", 0, 0.9f, EmaSlots);
        long[] state = [s.Batch, s.KvHeads, EmaSlots, s.HeadDim];
        var names = past > 0 ? new[] { "q", "k", "v", "ks", "vs", "n" } : ["q", "k", "v"];
        var b = Qkv("ours_summary", s);
        if (past > 0) b.Input("ks", F, D(state)).Input("vs", F, D(state)).Input("n", I64, s.Batch);
        b.SummaryAttention(o, names, ["y", "ks_out", "vs_out", "n_out"])
            .Output("y", F, s.Batch, s.Seq, s.QHeads * s.HeadDim).Output("ks_out", F, D(state)).Output("vs_out", F, D(state)).Output("n_out", I64, s.Batch);
        var inputs = QkvInputs(s);
        if (past > 0)
        {
            inputs["ks"] = (BoundModel.Filled(Count(state), 7), state);
            inputs["vs"] = (BoundModel.Filled(Count(state), 8), state);
            inputs["n"] = (Enumerable.Repeat(past, s.Batch).ToArray(), [s.Batch]);
        }
        var outputs = Outputs(s, ("ks_out", state), ("vs_out", state));
        outputs["n_out"] = (new long[s.Batch], [s.Batch]);
        return new Bench(b.Build(), inputs, outputs, past > 0 ? new() { ["ks_out"] = "ks", ["vs_out"] = "vs" } : [],
            2.0 * Count(state) * sizeof(float));
    }

    /// <summary>HybridAttention, window <see cref="HybridWindow"/> with linear compression, after <paramref name="past"/> tokens.</summary>
    public static Bench Hybrid(BenchModels.Shape s, long past)
    {
        var o = new HybridAttentionNode.Options(s.QHeads, HybridWindow, s.KvHeads, "linear");
        long[] cache = [s.Batch, s.KvHeads, HybridWindow, s.HeadDim], nu = [s.Batch, s.KvHeads, s.HeadDim], mu = [s.Batch, s.KvHeads, s.HeadDim, s.HeadDim];
        var b = Qkv("ours_hybrid", s);
        if (past > 0) b.Input("kc", F, D(cache)).Input("vc", F, D(cache)).Input("pos", I64, s.Batch).Input("nu", F, D(nu)).Input("mu", F, D(mu));
        b.HybridAttention(o, past > 0 ? ["q", "k", "v", "kc", "vc", "pos", "nu", "mu"] : ["q", "k", "v"], ["y", "kc_out", "vc_out", "pos_out", "nu_out", "mu_out"])
            .Output("y", F, s.Batch, s.Seq, s.QHeads * s.HeadDim).Output("kc_out", F, D(cache)).Output("vc_out", F, D(cache))
            .Output("pos_out", I64, s.Batch).Output("nu_out", F, D(nu)).Output("mu_out", F, D(mu));
        var inputs = QkvInputs(s);
        if (past > 0)
        {
            inputs["kc"] = (BoundModel.Filled(Count(cache), 5), cache);
            inputs["vc"] = (BoundModel.Filled(Count(cache), 6), cache);
            inputs["pos"] = (Enumerable.Repeat(past, s.Batch).ToArray(), [s.Batch]);
            // Sums of phi(k) over many tokens: positive, so the normaliser is well away from zero.
            inputs["nu"] = (Enumerable.Repeat((float)past, (int)Count(nu)).ToArray(), nu);
            inputs["mu"] = (BoundModel.Filled(Count(mu), 9, past), mu);
        }
        var outputs = Outputs(s, ("kc_out", cache), ("vc_out", cache), ("nu_out", nu), ("mu_out", mu));
        outputs["pos_out"] = (new long[s.Batch], [s.Batch]);
        return new Bench(b.Build(), inputs, outputs,
            past > 0 ? new() { ["kc_out"] = "kc", ["vc_out"] = "vc", ["nu_out"] = "nu", ["mu_out"] = "mu" } : [],
            (2.0 * Count(cache) + Count(nu) + Count(mu)) * sizeof(float));
    }

    /// <summary>SegmentAttention, segments of <see cref="SegmentLength"/>, after <paramref name="past"/> tokens.</summary>
    public static Bench Segment(BenchModels.Shape s, long past)
    {
        var o = new SegmentAttentionNode.Options(s.QHeads, SegmentLength, s.KvHeads);
        long[] rows = [s.Batch, s.KvHeads, SegmentLength, s.HeadDim];
        var b = Qkv("ours_segment", s);
        if (past > 0) b.Input("mk", F, D(rows)).Input("mv", F, D(rows)).Input("sk", F, D(rows)).Input("sv", F, D(rows)).Input("pos", I64, s.Batch);
        b.SegmentAttention(o, past > 0 ? ["q", "k", "v", "mk", "mv", "sk", "sv", "pos"] : ["q", "k", "v"], ["y", "mk_out", "mv_out", "sk_out", "sv_out", "pos_out"])
            .Output("y", F, s.Batch, s.Seq, s.QHeads * s.HeadDim).Output("mk_out", F, D(rows)).Output("mv_out", F, D(rows))
            .Output("sk_out", F, D(rows)).Output("sv_out", F, D(rows)).Output("pos_out", I64, s.Batch);
        var inputs = QkvInputs(s);
        if (past > 0)
        {
            inputs["mk"] = (BoundModel.Filled(Count(rows), 5), rows);
            inputs["mv"] = (BoundModel.Filled(Count(rows), 6), rows);
            inputs["sk"] = (BoundModel.Filled(Count(rows), 7), rows);
            inputs["sv"] = (BoundModel.Filled(Count(rows), 8), rows);
            inputs["pos"] = (Enumerable.Repeat(past, s.Batch).ToArray(), [s.Batch]);
        }
        var outputs = Outputs(s, ("mk_out", rows), ("mv_out", rows), ("sk_out", rows), ("sv_out", rows));
        outputs["pos_out"] = (new long[s.Batch], [s.Batch]);
        // A decode step reads the memory and the own segment up to its offset.
        var visible = past >= SegmentLength ? SegmentLength + past % SegmentLength + 1 : past + 1;
        return new Bench(b.Build(), inputs, outputs,
            past > 0 ? new() { ["mk_out"] = "mk", ["mv_out"] = "mv", ["sk_out"] = "sk", ["sv_out"] = "sv" } : [],
            2.0 * s.Batch * s.KvHeads * visible * s.HeadDim * sizeof(float));
    }

    private static ModelBuilder Qkv(string name, BenchModels.Shape s) => new ModelBuilder(name)
        .Input("q", F, s.Batch, s.Seq, s.QHeads * s.HeadDim).Input("k", F, s.Batch, s.Seq, s.KvHeads * s.HeadDim).Input("v", F, s.Batch, s.Seq, s.KvHeads * s.HeadDim);

    private static Dictionary<string, (Array, long[])> QkvInputs(BenchModels.Shape s) => new()
    {
        ["q"] = (BoundModel.Filled((long)s.Batch * s.Seq * s.QHeads * s.HeadDim, 1), [s.Batch, s.Seq, s.QHeads * s.HeadDim]),
        ["k"] = (BoundModel.Filled((long)s.Batch * s.Seq * s.KvHeads * s.HeadDim, 2), [s.Batch, s.Seq, s.KvHeads * s.HeadDim]),
        ["v"] = (BoundModel.Filled((long)s.Batch * s.Seq * s.KvHeads * s.HeadDim, 3), [s.Batch, s.Seq, s.KvHeads * s.HeadDim]),
    };

    private static Dictionary<string, (Array, long[])> Outputs(BenchModels.Shape s, params (string Name, long[] Shape)[] state)
    {
        var outputs = new Dictionary<string, (Array, long[])>
        {
            ["y"] = (new float[(long)s.Batch * s.Seq * s.QHeads * s.HeadDim], [s.Batch, s.Seq, s.QHeads * s.HeadDim]),
        };
        foreach (var (name, shape) in state) outputs[name] = (new float[Count(shape)], shape);
        return outputs;
    }

    private static Dim[] D(long[] shape) => shape.Select(d => (Dim)d).ToArray();

    private static long Count(long[] shape) => shape.Aggregate(1L, (a, d) => a * d);
}
