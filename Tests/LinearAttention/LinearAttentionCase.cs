using OnnxAttention.Graphs.Building;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.LinearAttention;

/// <summary>One configuration of LinearAttention with seeded inputs, shared by the test fixtures.</summary>
public sealed record LinearAttentionCase(int Batch, int Seq, int QHeads, int KvHeads, int Dk, int Dv,
    string FeatureMap = "elu_plus_one", bool Normalize = true, float Scale = 1f, int Seed = 1)
{
    public LinearAttentionNode.Options Options => new(QHeads, KvHeads, FeatureMap, Normalize, 1e-6f, Scale);

    public LinearAttentionAttributes Attributes =>
        LinearAttentionAttributes.Validate(QHeads, KvHeads, FeatureMaps.ByName[FeatureMap], Normalize ? 1 : 0, 1e-6f, Scale);

    // Maps that can vanish get positive inputs when normalised, so the denominator stays away from zero.
    private float Low => Normalize && FeatureMap != "elu_plus_one" ? 0.05f : -1f;

    public float[] Query => Seeded.Uniform(Seed, Batch * Seq * QHeads * Dk, Low);
    public float[] Key => Seeded.Uniform(Seed + 1, Batch * Seq * KvHeads * Dk, Low);
    public float[] Value => Seeded.Uniform(Seed + 2, Batch * Seq * KvHeads * Dv);
    public float[] PastState => Seeded.Uniform(Seed + 3, Batch * KvHeads * Dk * Dv, 0f, 0.5f);
    public float[] PastNormalizer => Seeded.Uniform(Seed + 4, Batch * KvHeads * Dk, 0.5f, 2f);
    public long[] StateShape => [Batch, KvHeads, Dk, Dv];
    public long[] NormalizerShape => [Batch, KvHeads, Dk];

    public LinearAttentionReference.Result Reference(bool withPast) =>
        LinearAttentionReference.Run(Attributes, Batch, Seq, Dk, Dv, Query, Key, Value,
            withPast ? PastState : null, withPast ? PastNormalizer : null);

    public override string ToString() =>
        $"B{Batch} T{Seq} Hq{QHeads} Hkv{KvHeads} dk{Dk} dv{Dv} {FeatureMap}{(Normalize ? "" : " unnormalised")} s{Scale}";
}
