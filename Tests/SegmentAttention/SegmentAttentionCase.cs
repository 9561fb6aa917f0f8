using OnnxAttention.Graphs.Building;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.SegmentAttention;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SegmentAttention;

/// <summary>
/// One configuration of SegmentAttention with seeded inputs, shared by the test fixtures. <paramref name="History"/>
/// &gt; 0 gives a past state: batch row b continues after History + b * HistoryStep earlier tokens, so rows may sit
/// in different segments and at different offsets inside them.
/// </summary>
public sealed record SegmentAttentionCase(int Batch, int Seq, int QHeads, int KvHeads, int Dk, int Dv, int SegmentLength,
    float Scale = 0f, int Seed = 1, int History = 0, int HistoryStep = 1) : IAttentionCase<SegmentState>
{
    public SegmentAttentionNode.Options Options => new(QHeads, SegmentLength, KvHeads, Scale);

    public SegmentAttentionAttributes Attributes =>
        SegmentAttentionAttributes.Validate(HeadAttributes.Validate(QHeads, KvHeads, Scale), SegmentLength);

    public float[] Query => Seeded.Uniform(Seed, Batch * Seq * QHeads * Dk);
    public float[] Key => Seeded.Uniform(Seed + 1, Batch * Seq * KvHeads * Dk);
    public float[] Value => Seeded.Uniform(Seed + 2, Batch * Seq * KvHeads * Dv);

    public long[] KeyStateShape => [Batch, KvHeads, SegmentLength, Dk];
    public long[] ValueStateShape => [Batch, KvHeads, SegmentLength, Dv];

    public int HistoryOf(int row) => History + row * HistoryStep;

    /// <summary>The start of a sequence, as explicit zeros.</summary>
    public SegmentState ZeroState => new(new float[Batch * KvHeads * SegmentLength * Dk], new float[Batch * KvHeads * SegmentLength * Dv],
        new float[Batch * KvHeads * SegmentLength * Dk], new float[Batch * KvHeads * SegmentLength * Dv], new long[Batch]);

    /// <summary>
    /// A past state of HistoryOf(b) tokens for row b, made by the reference (the definition) from random earlier
    /// tokens and rounded to float32: the state the operator would be handed by an earlier call.
    /// </summary>
    public SegmentState Past
    {
        get
        {
            var rows = Enumerable.Range(0, Batch).Select(b =>
            {
                var t = HistoryOf(b);
                var seed = Seed * 7919 + 100 + b;
                return SegmentAttentionReference.Run(Attributes, 1, t, Dk, Dv,
                    Seeded.Uniform(seed, t * QHeads * Dk), Seeded.Uniform(seed + 1, t * KvHeads * Dk), Seeded.Uniform(seed + 2, t * KvHeads * Dv));
            }).ToList();
            return new SegmentState(
                ToFloat(rows.SelectMany(r => r.MemoryKey)), ToFloat(rows.SelectMany(r => r.MemoryValue)),
                ToFloat(rows.SelectMany(r => r.SegmentKey)), ToFloat(rows.SelectMany(r => r.SegmentValue)),
                rows.SelectMany(r => r.Position).ToArray());
        }
    }

    public SegmentAttentionReference.Result Reference(SegmentState? past) =>
        SegmentAttentionReference.Run(Attributes, Batch, Seq, Dk, Dv, Query, Key, Value,
            past?.MemoryKey, past?.MemoryValue, past?.SegmentKey, past?.SegmentValue, past?.Position);

    private static float[] ToFloat(IEnumerable<double> x) => x.Select(v => (float)v).ToArray();

    public override string ToString() =>
        $"B{Batch} T{Seq} Hq{QHeads} Hkv{KvHeads} dk{Dk} dv{Dv} L{SegmentLength}" +
        (Scale != 0 ? $" s{Scale}" : "") + (History > 0 || HistoryStep != 1 ? $" history{History}+{HistoryStep}b" : "");
}
