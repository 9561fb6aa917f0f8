using OnnxAttention.Graphs.Building;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.SegmentAttention;
using OnnxAttention.Operators.SummaryAttention;
using OnnxAttention.Operators.WindowAttention;

namespace OnnxAttention.Cli.Verify;

/// <summary>
/// The rules every device check covers: each operator with the attribute sets the swap uses (the CLI's --attention
/// rules) and the other update rules, feature maps and memories its CUDA kernels specialise on. Windows and segments
/// come both shorter than one 64-row tile and longer, so the split-K decode and the multi-tile prefill both run.
/// </summary>
public static class ParityRules
{
    public static IReadOnlyList<ParityRule> For(ParityShape s)
    {
        int hq = s.QHeads, hkv = s.KvHeads;
        var perHeadGate = new TokenInput("decay", hkv, -0.5f, -0.01f);
        var perKeyGate = new TokenInput("decay", hkv * s.KeyDim, -0.5f, -0.01f);
        var beta = new TokenInput("beta", hkv, 0.05f, 0.95f);
        ParityRule Linear(string label, LinearAttentionNode.Options o, params TokenInput[] fed) =>
            ParityRule.Of(LinearAttentionContract.Contract, label,
                (b, i, x) => b.LinearAttention(o, i[0], i[1], i[2], i[3], i[4], x[0], x[1], x[2], decay: i[5], beta: i[6]), fed);
        ParityRule Window(string label, WindowAttentionNode.Options o) =>
            ParityRule.Of(WindowAttentionContract.Contract, label, (b, i, x) => b.WindowAttention(o, i, x));
        ParityRule Hybrid(string label, HybridAttentionNode.Options o) =>
            ParityRule.Of(HybridAttentionContract.Contract, label, (b, i, x) => b.HybridAttention(o, i, x));
        ParityRule Segment(string label, SegmentAttentionNode.Options o) =>
            ParityRule.Of(SegmentAttentionContract.Contract, label, (b, i, x) => b.SegmentAttention(o, i, x));
        ParityRule Summary(string label, SummaryAttentionNode.Options o) =>
            ParityRule.Of(SummaryAttentionContract.Contract, label, (b, i, x) => b.SummaryAttention(o, i, x));
        var scale = 1f / MathF.Sqrt(s.KeyDim);
        return
        [
            Linear("linear elu_plus_one (linear-elu)", new(hq, hkv, "elu_plus_one", Normalize: true)),
            Linear("linear relu (linear-relu)", new(hq, hkv, "relu", Normalize: true)),
            Linear("linear identity, no normaliser", new(hq, hkv, "identity", Normalize: false, Scale: scale)),
            Linear("linear squared_relu", new(hq, hkv, "squared_relu", Normalize: true)),
            Linear("linear decay=0.95 (RetNet)", new(hq, hkv, "identity", Normalize: false, Scale: scale, Decay: 0.95f)),
            Linear("gated, gate per head", new(hq, hkv, "identity", Normalize: false, Scale: scale, UpdateRule: "gated"), perHeadGate),
            Linear("delta l2norm", new(hq, hkv, "l2norm", Normalize: false, Scale: scale, UpdateRule: "delta"), beta),
            Linear("gated_delta l2norm, gate per key", new(hq, hkv, "l2norm", Normalize: false, Scale: scale, UpdateRule: "gated_delta"), perKeyGate, beta),
            Window("window=8", new(hq, 8, hkv)),
            Window("window=8,sinks=2,softcap=20", new(hq, 8, hkv, Sinks: 2, Softcap: 20f)),
            Window("window=200,sinks=4 (split-K)", new(hq, 200, hkv, Sinks: 4)),
            Hybrid("window=8,compress=linear", new(hq, 8, hkv, Compress: "linear")),
            Hybrid("window=96,compress=mean (split-K)", new(hq, 96, hkv, Compress: "mean")),
            Hybrid("window=8,compress=hedgehog,projections=4 (calibrate's hybrid-hedgehog)", new(hq, 8, hkv, Compress: "hedgehog", Projections: 4))
                .WithConstants(HedgehogMaps(s, 4)),
            Segment("segment=8", new(hq, 8, hkv)),
            Segment("segment=96 (split-K)", new(hq, 96, hkv)),
            Summary("cumulative", new(hq, hkv, "cumulative")),
            Summary("moving=4", new(hq, hkv, "moving", Window: 4)),
            Summary("ema=0.9", new(hq, hkv, "ema", Alpha: 0.9f)),
            Summary("ema=0.9,slots=3", new(hq, hkv, "ema", Alpha: 0.9f, NumSlots: 3)),
        ];
    }

    /// <summary>
    /// Seeded Hedgehog feature maps and mix for compress=hedgehog (calibrate fits them; any finite weights and
    /// non-negative mix are valid): W_q [Hq, dk, m], b_q [Hq, m], W_k [Hkv, dk, m], b_k [Hkv, m], mix [Hq].
    /// </summary>
    private static ConstantInput[] HedgehogMaps(ParityShape s, int m)
    {
        var random = new Random(20260);
        float[] Draw(long n, float low, float high) => [.. Enumerable.Range(0, (int)n).Select(_ => low + (high - low) * random.NextSingle())];
        long hq = s.QHeads, hkv = s.KvHeads, dk = s.KeyDim;
        var c = HybridAttentionContract.Contract.FurtherInputs(Operators.Interop.OrtElementType.Float);
        string Name(int input) => c[input - HybridAttentionContract.FeatureQueryWeight].Name;
        return
        [
            new(Name(HybridAttentionContract.FeatureQueryWeight), Draw(hq * dk * m, -1f, 1f), [hq, dk, m]),
            new(Name(HybridAttentionContract.FeatureQueryBias), Draw(hq * m, -1f, 1f), [hq, m]),
            new(Name(HybridAttentionContract.FeatureKeyWeight), Draw(hkv * dk * m, -1f, 1f), [hkv, dk, m]),
            new(Name(HybridAttentionContract.FeatureKeyBias), Draw(hkv * m, -1f, 1f), [hkv, m]),
            new(Name(HybridAttentionContract.Mix), Draw(hq, 0.1f, 2f), [hq]),
        ];
    }
}
