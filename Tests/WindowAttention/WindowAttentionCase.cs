using OnnxAttention.Graphs.Building;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.WindowAttention;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.WindowAttention;

/// <summary>WindowAttention's state between calls, as float32/int64 arrays in the operator's layouts.</summary>
public sealed record WindowState(float[] Key, float[] Value, long[] Position);

/// <summary>
/// One configuration of WindowAttention with seeded inputs, shared by the test fixtures. <paramref name="History"/>
/// &gt; 0 gives a past state: batch row b continues after History + b earlier tokens, so rows sit at different
/// positions and ring offsets.
/// </summary>
public sealed record WindowAttentionCase(int Batch, int Seq, int QHeads, int KvHeads, int Dk, int Dv, int Window,
    int Sinks = 0, float Scale = 0f, float Softcap = 0f, int Seed = 1, int History = 0) : IAttentionCase<WindowState>
{
    public WindowAttentionNode.Options Options => new(QHeads, Window, KvHeads, Sinks, Scale, Softcap);

    public WindowAttentionAttributes Attributes => WindowAttentionAttributes.Validate(
        HeadAttributes.Validate(QHeads, KvHeads, Scale), Window, Sinks, Softcap);

    public int Rows => Sinks + Window;

    public float[] Query => Seeded.Uniform(Seed, Batch * Seq * QHeads * Dk);
    public float[] Key => Seeded.Uniform(Seed + 1, Batch * Seq * KvHeads * Dk);
    public float[] Value => Seeded.Uniform(Seed + 2, Batch * Seq * KvHeads * Dv);

    public long[] CacheKeyShape => [Batch, KvHeads, Rows, Dk];
    public long[] CacheValueShape => [Batch, KvHeads, Rows, Dv];

    /// <summary>The start of a sequence, as explicit zeros.</summary>
    public WindowState ZeroState => new(new float[Batch * KvHeads * Rows * Dk], new float[Batch * KvHeads * Rows * Dv], new long[Batch]);

    /// <summary>
    /// A past state of History + b tokens for row b, made by the reference (the definition) from random earlier
    /// tokens and rounded to float32: the state the operator would be handed by an earlier call.
    /// </summary>
    public WindowState Past
    {
        get
        {
            var rows = Enumerable.Range(0, Batch).Select(b =>
            {
                var t = History + b;
                var seed = Seed * 7919 + 100 + b;
                return WindowAttentionReference.Run(Attributes, 1, t, Dk, Dv,
                    Seeded.Uniform(seed, t * QHeads * Dk), Seeded.Uniform(seed + 1, t * KvHeads * Dk), Seeded.Uniform(seed + 2, t * KvHeads * Dv));
            }).ToList();
            return new WindowState(ToFloat(rows.SelectMany(r => r.KeyCache)), ToFloat(rows.SelectMany(r => r.ValueCache)),
                rows.SelectMany(r => r.Position).ToArray());
        }
    }

    public WindowAttentionReference.Result Reference(WindowState? past) =>
        WindowAttentionReference.Run(Attributes, Batch, Seq, Dk, Dv, Query, Key, Value, past?.Key, past?.Value, past?.Position);

    private static float[] ToFloat(IEnumerable<double> x) => x.Select(v => (float)v).ToArray();

    public override string ToString() =>
        $"B{Batch} T{Seq} Hq{QHeads} Hkv{KvHeads} dk{Dk} dv{Dv} W{Window}" + (Sinks > 0 ? $" S{Sinks}" : "") +
        (Scale != 0 ? $" s{Scale}" : "") + (Softcap != 0 ? $" cap{Softcap}" : "") + (History > 0 ? $" history{History}" : "");
}
