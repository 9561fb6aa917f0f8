using OnnxAttention.Graphs.Building;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.SummaryAttention;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SummaryAttention;

/// <summary>
/// One configuration of SummaryAttention with seeded inputs, shared by the test fixtures. <paramref name="History"/>
/// &gt; 0 gives a past state: batch row b continues after History + b earlier tokens, so rows sit at different
/// positions (and, for moving summaries, different ring offsets).
/// </summary>
public sealed record SummaryAttentionCase(int Batch, int Seq, int QHeads, int KvHeads, int Dk, int Dv,
    string Summary = "cumulative", int Window = 0, float Alpha = 0.9f, int NumSlots = 1, float Scale = 0f,
    int Seed = 1, int History = 0) : IAttentionCase<SummaryState>
{
    public SummaryAttentionNode.Options Options => new(QHeads, KvHeads, Summary, Window, Alpha, NumSlots, Scale);

    public SummaryAttentionAttributes Attributes => SummaryAttentionAttributes.Validate(
        HeadAttributes.Validate(QHeads, KvHeads, Scale), SummaryKinds.ByName[Summary], Window, Alpha, NumSlots);

    public int Rows => Summary == "moving" ? Window : 0;

    /// <summary>The past inputs a graph for this kind wires: the ring buffers only for moving summaries.</summary>
    public int PastInputs => Summary == "moving" ? 5 : 3;

    public float[] Query => Seeded.Uniform(Seed, Batch * Seq * QHeads * Dk);
    public float[] Key => Seeded.Uniform(Seed + 1, Batch * Seq * KvHeads * Dk);
    public float[] Value => Seeded.Uniform(Seed + 2, Batch * Seq * KvHeads * Dv);

    public long[] KeySummaryShape => [Batch, KvHeads, NumSlots, Dk];
    public long[] ValueSummaryShape => [Batch, KvHeads, NumSlots, Dv];
    public long[] KeyWindowShape => [Batch, KvHeads, Rows, Dk];
    public long[] ValueWindowShape => [Batch, KvHeads, Rows, Dv];

    /// <summary>The start of a sequence, as explicit zeros.</summary>
    public SummaryState ZeroState => new(new float[Batch * KvHeads * NumSlots * Dk], new float[Batch * KvHeads * NumSlots * Dv],
        new long[Batch], new float[Batch * KvHeads * Rows * Dk], new float[Batch * KvHeads * Rows * Dv]);

    /// <summary>
    /// A past state of History + b tokens for row b, made by the reference (the definition) from random earlier
    /// tokens and rounded to float32: the state the operator would be handed by an earlier call.
    /// </summary>
    public SummaryState Past
    {
        get
        {
            var rows = Enumerable.Range(0, Batch).Select(b =>
            {
                var t = History + b;
                var seed = Seed * 7919 + 100 + b;
                return SummaryAttentionReference.Run(Attributes, 1, t, Dk, Dv,
                    Seeded.Uniform(seed, t * QHeads * Dk), Seeded.Uniform(seed + 1, t * KvHeads * Dk), Seeded.Uniform(seed + 2, t * KvHeads * Dv));
            }).ToList();
            return new SummaryState(
                ToFloat(rows.SelectMany(r => r.KeySummary)), ToFloat(rows.SelectMany(r => r.ValueSummary)),
                rows.SelectMany(r => r.Count).ToArray(),
                ToFloat(rows.SelectMany(r => r.KeyWindow)), ToFloat(rows.SelectMany(r => r.ValueWindow)));
        }
    }

    public SummaryAttentionReference.Result Reference(SummaryState? past) =>
        SummaryAttentionReference.Run(Attributes, Batch, Seq, Dk, Dv, Query, Key, Value,
            past?.KeySummary, past?.ValueSummary, past?.Count, past?.KeyWindow, past?.ValueWindow);

    private static float[] ToFloat(IEnumerable<double> x) => x.Select(v => (float)v).ToArray();

    public override string ToString() =>
        $"B{Batch} T{Seq} Hq{QHeads} Hkv{KvHeads} dk{Dk} dv{Dv} {Summary}" +
        (Summary == "moving" ? $" M{Window}" : "") + (Summary == "ema" ? $" a{Alpha} slots{NumSlots}" : "") +
        (Scale != 0 ? $" s{Scale}" : "") + (History > 0 ? $" history{History}" : "");
}
