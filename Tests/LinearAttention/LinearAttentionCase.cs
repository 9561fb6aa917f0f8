using OnnxAttention.Graphs.Building;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.LinearAttention;

/// <summary>One configuration of LinearAttention with seeded inputs, shared by the test fixtures.</summary>
/// <param name="UpdateRule">linear, gated, delta or gated_delta.</param>
/// <param name="GatePerHead">gated rules: decay input [B, T, H_kv] instead of [B, T, H_kv * d_k].</param>
/// <param name="SharedBeta">delta rules: beta input [B, T, 1] instead of [B, T, H_kv].</param>
/// <param name="Gamma">the fixed decay attribute.</param>
public sealed record LinearAttentionCase(int Batch, int Seq, int QHeads, int KvHeads, int Dk, int Dv,
    string FeatureMap = "elu_plus_one", bool Normalize = true, float Scale = 1f, int Seed = 1,
    string UpdateRule = "linear", bool GatePerHead = false, bool SharedBeta = false, float Gamma = 1f)
{
    public LinearAttentionNode.Options Options => new(QHeads, KvHeads, FeatureMap, Normalize, 1e-6f, Scale, UpdateRule, Gamma);

    public UpdateRule Rule => UpdateRules.ByName[UpdateRule];

    public LinearAttentionAttributes Attributes =>
        LinearAttentionAttributes.Validate(QHeads, KvHeads, FeatureMaps.ByName[FeatureMap], Normalize ? 1 : 0, 1e-6f, Scale, Rule, Gamma);

    // Maps that can vanish get positive inputs when normalised, so the denominator stays away from zero.
    private float Low => Normalize && FeatureMap != "elu_plus_one" ? 0.05f : -1f;

    /// <summary>
    /// The delta rule is stable only while beta |phi(k)|^2 &lt; 2 (DeltaNet normalises keys for that reason), so its
    /// test keys are unit vectors per head unless the l2norm map normalises them itself.
    /// </summary>
    private bool UnitKeys => UpdateRules.IsDelta(Rule) && FeatureMap != "l2norm";

    public float[] Query => Seeded.Uniform(Seed, Batch * Seq * QHeads * Dk, Low);
    public float[] Key => UnitKeys ? PerHeadUnitVectors(Seeded.Uniform(Seed + 1, Batch * Seq * KvHeads * Dk, Low), Dk)
        : Seeded.Uniform(Seed + 1, Batch * Seq * KvHeads * Dk, Low);
    public float[] Value => Seeded.Uniform(Seed + 2, Batch * Seq * KvHeads * Dv);
    public float[] PastState => Seeded.Uniform(Seed + 3, Batch * KvHeads * Dk * Dv, 0f, 0.5f);
    public float[] PastNormalizer => Seeded.Uniform(Seed + 4, Batch * KvHeads * Dk, 0.5f, 2f);
    public long[] StateShape => [Batch, KvHeads, Dk, Dv];
    public long[] NormalizerShape => [Batch, KvHeads, Dk];

    /// <summary>Width of the decay input's last axis, 0 when the rule takes none.</summary>
    public int DecayWidth => UpdateRules.IsGated(Rule) ? (GatePerHead ? KvHeads : KvHeads * Dk) : 0;

    /// <summary>Width of the beta input's last axis, 0 when the rule takes none.</summary>
    public int BetaWidth => UpdateRules.IsDelta(Rule) ? (SharedBeta ? 1 : KvHeads) : 0;

    /// <summary>Log-space gates: multipliers exp(g) between about 0.5 and 0.99.</summary>
    public float[]? Decay => DecayWidth == 0 ? null : Seeded.Uniform(Seed + 5, Batch * Seq * DecayWidth, -0.7f, -0.01f);

    public float[]? Beta => BetaWidth == 0 ? null : Seeded.Uniform(Seed + 6, Batch * Seq * BetaWidth, 0.05f, 1f);

    public long[] DecayShape => [Batch, Seq, DecayWidth];
    public long[] BetaShape => [Batch, Seq, BetaWidth];

    public LinearAttentionReference.Result Reference(bool withPast) =>
        LinearAttentionReference.Run(Attributes, Batch, Seq, Dk, Dv, Query, Key, Value,
            withPast ? PastState : null, withPast ? PastNormalizer : null, Decay, Beta);

    /// <summary>Runs the whole case through a session built from <see cref="Options"/>.</summary>
    public LinearAttentionSession.Outputs Run(LinearAttentionSession session, bool withPast) =>
        withPast
            ? session.Run(Batch, Seq, Query, Key, Value, PastState, PastNormalizer, StateShape, NormalizerShape, decay: Decay, beta: Beta)
            : session.Run(Batch, Seq, Query, Key, Value, decay: Decay, beta: Beta);

    public override string ToString() =>
        $"B{Batch} T{Seq} Hq{QHeads} Hkv{KvHeads} dk{Dk} dv{Dv} {FeatureMap}{(Normalize ? "" : " unnormalised")} s{Scale} {UpdateRule}"
        + (DecayWidth == 0 ? "" : GatePerHead ? " gate/head" : " gate/key")
        + (BetaWidth == 0 ? "" : SharedBeta ? " beta shared" : " beta/head")
        + (Gamma == 1f ? "" : $" gamma{Gamma}");

    private static float[] PerHeadUnitVectors(float[] x, int dim)
    {
        for (var start = 0; start < x.Length; start += dim)
        {
            var sumOfSquares = 0.0;
            for (var i = 0; i < dim; i++) sumOfSquares += (double)x[start + i] * x[start + i];
            var inverse = 1.0 / Math.Sqrt(sumOfSquares);
            for (var i = 0; i < dim; i++) x[start + i] = (float)(x[start + i] * inverse);
        }
        return x;
    }
}
