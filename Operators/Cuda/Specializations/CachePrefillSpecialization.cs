using OnnxAttention.Operators.HybridAttention;

namespace OnnxAttention.Operators.Cuda.Specializations;

/// <summary>Which operator's multi-token kernels a <see cref="CachePrefillSpecialization"/> compiles.</summary>
public enum CachePrefillOperator
{
    Window,
    Segment,
    Hybrid,
}

/// <summary>
/// The multi-token kernels of WindowAttention, SegmentAttention and HybridAttention
/// (window_attention_prefill.cu, segment_attention_prefill.cu, hybrid_attention_prefill.cu; contract in
/// onnx_attention_cache_prefill.cuh and each file's header), and every grid they launch on: one attention launch
/// (<see cref="AttentionGrid"/>: a block per batch row, KV head and token), then the state launches
/// (hybrid: <see cref="CompressGrid"/>; all: <see cref="StoreGrid"/>); compress=hedgehog first computes the evicted
/// keys' features (<see cref="FeaturesGrid"/>). 128 threads, static shared memory only.
/// NOT RUN ON A GPU YET.
/// </summary>
public sealed record CachePrefillSpecialization : KernelSpecialization
{
    public const int Threads = 128;

    /// <summary>Cache rows one store block handles (blocks stride over the rows beyond 65535 blocks).</summary>
    public const int RowsPerStoreBlock = 16;

    /// <summary>
    /// compress=hedgehog: the largest group size × projections. The attention block keeps phi(q) of its group's query
    /// heads (group × 2m floats) in static shared memory beside the window's tiles (hybrid_attention_prefill.cu checks
    /// the same bound).
    /// </summary>
    public const int MaxHedgehogGroupProjections = 2048;

    public CachePrefillSpecialization(CachePrefillOperator op, int headDim, int valueDim, int group, CudaActivation activation,
        CompressKind compress = CompressKind.Linear, int projections = 0)
    {
        RequireRange(nameof(headDim), headDim, 1, 512);
        RequireRange(nameof(valueDim), valueDim, 1, 512);
        RequireRange(nameof(group), group, 1, 64);
        if (op == CachePrefillOperator.Hybrid && compress == CompressKind.Hedgehog)
        {
            if (HedgehogDoesNotFit(group, projections) is { } why)
            {
                throw new ArgumentOutOfRangeException(nameof(projections), projections, why);
            }
        }
        else
        {
            RequireRange(nameof(projections), projections, 0, 0);
        }
        (Operator, HeadDim, ValueDim, Group, Activation, Compress, Projections) = (op, headDim, valueDim, group, activation, compress, projections);
    }

    /// <summary>Why a hedgehog node's group of query features would not fit the attention block's shared memory, or null.</summary>
    public static string? HedgehogDoesNotFit(int group, int projections) =>
        projections >= 1 && (long)group * projections <= MaxHedgehogGroupProjections ? null
            : $"compress=hedgehog on CUDA needs (q_num_heads / kv_num_heads) * projections in [1, {MaxHedgehogGroupProjections}], got {group} * {projections}";

    public CachePrefillOperator Operator { get; }
    public int HeadDim { get; }
    public int ValueDim { get; }
    public int Group { get; }
    public CudaActivation Activation { get; }
    /// <summary>HybridAttention only (COMPRESS); ignored otherwise.</summary>
    public CompressKind Compress { get; }
    /// <summary>compress=hedgehog: m (PROJECTIONS, 2m features); 0 otherwise.</summary>
    public int Projections { get; }

    /// <summary>Features of the compressed memory (rows of mu): d_k (linear), 2m (hedgehog); mean has none.</summary>
    public int Features => Compress == CompressKind.Hedgehog ? 2 * Projections : HeadDim;

    public override KernelSource Source => Operator switch
    {
        CachePrefillOperator.Window => KernelSources.WindowAttentionPrefill,
        CachePrefillOperator.Segment => KernelSources.SegmentAttentionPrefill,
        _ => KernelSources.HybridAttentionPrefill,
    };

    /// <summary>The entry point names: (attention, store); the hybrid file also has <c>hybrid_attention_compress</c>.</summary>
    public string AttentionEntry => Prefix + "_prefill";

    public string StoreEntry => Prefix + "_store";

    private string Prefix => Operator switch
    {
        CachePrefillOperator.Window => "window_attention",
        CachePrefillOperator.Segment => "segment_attention",
        _ => "hybrid_attention",
    };

    public override int ThreadsPerBlock => Threads;

    /// <summary>(batch * kv_heads * T, 1): block x = (b * kv_heads + h) * T + t.</summary>
    public static (int X, int Y) AttentionGrid(int batch, int kvHeads, int tokens)
    {
        var blocks = (long)batch * kvHeads * tokens;
        if (blocks > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(tokens), tokens,
                $"batch * kv_heads * sequence length = {blocks} blocks is more than one CUDA grid dimension holds (2^31 - 1)");
        }
        return ((int)blocks, 1);
    }

    /// <summary>(batch * kv_heads, min(ceil(rows / 16), 65535)) over the state's rows (S + W, L or W).</summary>
    public static (int X, int Y) StoreGrid(int batch, int kvHeads, int rows) =>
        (batch * kvHeads, Math.Clamp(CeilDiv(rows, RowsPerStoreBlock), 1, 65535));

    /// <summary>
    /// hybrid_attention_compress: (batch * kv_heads, d_k) for linear, (batch * kv_heads, 2m) for hedgehog (a block per
    /// feature), (batch * kv_heads, ceil((d_k + d_v) / 128)) for mean.
    /// </summary>
    public (int X, int Y) CompressGrid(int batch, int kvHeads) =>
        (batch * kvHeads, Compress == CompressKind.Mean ? CeilDiv(HeadDim + ValueDim, Threads) : Features);

    /// <summary>hybrid_attention_features (hedgehog): (batch * kv_heads, min(T, 65535)); blocks stride over the call's evictions.</summary>
    public static (int X, int Y) FeaturesGrid(int batch, int kvHeads, int tokens) => (batch * kvHeads, Math.Clamp(tokens, 1, 65535));

    /// <summary>The features scratch of a call: float32 [batch * kv_heads, T, 2m] (a row per eviction, at most T).</summary>
    public long FeaturesBytes(int batch, int kvHeads, int tokens) => (long)batch * kvHeads * tokens * Features * sizeof(float);

    protected override IEnumerable<KernelDefine> SpecializationDefines()
    {
        yield return new("ACT_TYPE", (int)Activation);
        yield return new("HEAD_DIM", HeadDim);
        yield return new("VALUE_DIM", ValueDim);
        yield return new("GROUP", Group);
        if (Operator == CachePrefillOperator.Hybrid)
        {
            yield return new("COMPRESS", (int)Compress);
            if (Compress == CompressKind.Hedgehog)
            {
                yield return new("PROJECTIONS", Projections);
            }
        }
    }
}
