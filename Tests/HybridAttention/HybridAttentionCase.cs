using OnnxAttention.Graphs.Building;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.HybridAttention;

/// <summary>
/// One configuration of HybridAttention with seeded inputs, shared by the test fixtures. <paramref name="History"/>
/// &gt; 0 gives a past state: batch row b continues after History + b earlier tokens, so rows sit at different
/// positions and ring offsets.
/// </summary>
public sealed record HybridAttentionCase(int Batch, int Seq, int QHeads, int KvHeads, int Dk, int Dv, int Window,
    string Compress = "linear", float Scale = 0f, float Epsilon = 1e-6f, int Seed = 1, int History = 0, int Projections = 0) : IAttentionCase<HybridState>
{
    public HybridAttentionNode.Options Options => new(QHeads, Window, KvHeads, Compress, Epsilon, Scale, Projections);

    public HybridAttentionAttributes Attributes => HybridAttentionAttributes.Validate(
        HeadAttributes.Validate(QHeads, KvHeads, Scale), Window, CompressKinds.ByName[Compress], Epsilon, Projections);

    public int CompressedRows => Compress switch { "linear" => Dk, "hedgehog" => 2 * Projections, _ => 1 };

    public int CompressedKeyDim => Compress == "hedgehog" ? 2 * Projections : Dk;

    /// <summary>compress=hedgehog: seeded feature maps (weights of either sign, a mix in [0.1, 2]); null otherwise.</summary>
    public HybridAttentionReference.HedgehogMaps? Maps => Compress != "hedgehog" ? null : new(
        Seeded.Uniform(Seed + 20, QHeads * Dk * Projections, -2f, 2f), Seeded.Uniform(Seed + 21, QHeads * Projections),
        Seeded.Uniform(Seed + 22, KvHeads * Dk * Projections, -2f, 2f), Seeded.Uniform(Seed + 23, KvHeads * Projections),
        Seeded.Uniform(Seed + 24, QHeads, 0.1f, 2f));

    public float[] Query => Seeded.Uniform(Seed, Batch * Seq * QHeads * Dk);
    public float[] Key => Seeded.Uniform(Seed + 1, Batch * Seq * KvHeads * Dk);
    public float[] Value => Seeded.Uniform(Seed + 2, Batch * Seq * KvHeads * Dv);

    public long[] CacheKeyShape => [Batch, KvHeads, Window, Dk];
    public long[] CacheValueShape => [Batch, KvHeads, Window, Dv];
    public long[] CompressedKeyShape => [Batch, KvHeads, CompressedKeyDim];
    public long[] CompressedValueShape => [Batch, KvHeads, CompressedRows, Dv];

    /// <summary>The start of a sequence, as explicit zeros.</summary>
    public HybridState ZeroState => new(new float[Batch * KvHeads * Window * Dk], new float[Batch * KvHeads * Window * Dv],
        new long[Batch], new float[Batch * KvHeads * CompressedKeyDim], new float[Batch * KvHeads * CompressedRows * Dv]);

    /// <summary>
    /// A past state of History + b tokens for row b, made by the reference (the definition) from random earlier
    /// tokens and rounded to float32: the state the operator would be handed by an earlier call.
    /// </summary>
    public HybridState Past
    {
        get
        {
            var rows = Enumerable.Range(0, Batch).Select(b =>
            {
                var t = History + b;
                var seed = Seed * 7919 + 100 + b;
                return HybridAttentionReference.Run(Attributes, 1, t, Dk, Dv,
                    Seeded.Uniform(seed, t * QHeads * Dk), Seeded.Uniform(seed + 1, t * KvHeads * Dk), Seeded.Uniform(seed + 2, t * KvHeads * Dv), maps: Maps);
            }).ToList();
            return new HybridState(
                ToFloat(rows.SelectMany(r => r.Key)), ToFloat(rows.SelectMany(r => r.Value)),
                rows.SelectMany(r => r.Position).ToArray(),
                ToFloat(rows.SelectMany(r => r.CompressedKey)), ToFloat(rows.SelectMany(r => r.CompressedValue)));
        }
    }

    public HybridAttentionReference.Result Reference(HybridState? past) =>
        HybridAttentionReference.Run(Attributes, Batch, Seq, Dk, Dv, Query, Key, Value,
            past?.Key, past?.Value, past?.Position, past?.CompressedKey, past?.CompressedValue, Maps);

    private static float[] ToFloat(IEnumerable<double> x) => x.Select(v => (float)v).ToArray();

    public override string ToString() =>
        $"B{Batch} T{Seq} Hq{QHeads} Hkv{KvHeads} dk{Dk} dv{Dv} W{Window} {Compress}" +
        (Projections > 0 ? $" m{Projections}" : "") + (Scale != 0 ? $" s{Scale}" : "") + (History > 0 ? $" history{History}" : "");
}
