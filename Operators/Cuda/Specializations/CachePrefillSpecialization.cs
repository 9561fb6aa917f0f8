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
/// (hybrid: <see cref="CompressGrid"/>; all: <see cref="StoreGrid"/>). 128 threads, static shared memory only.
/// NOT RUN ON A GPU YET.
/// </summary>
public sealed record CachePrefillSpecialization : KernelSpecialization
{
    public const int Threads = 128;

    /// <summary>Cache rows one store block handles (blocks stride over the rows beyond 65535 blocks).</summary>
    public const int RowsPerStoreBlock = 16;

    public CachePrefillSpecialization(CachePrefillOperator op, int headDim, int valueDim, int group, CudaActivation activation,
        CompressKind compress = CompressKind.Linear)
    {
        RequireRange(nameof(headDim), headDim, 1, 512);
        RequireRange(nameof(valueDim), valueDim, 1, 512);
        RequireRange(nameof(group), group, 1, 64);
        (Operator, HeadDim, ValueDim, Group, Activation, Compress) = (op, headDim, valueDim, group, activation, compress);
    }

    public CachePrefillOperator Operator { get; }
    public int HeadDim { get; }
    public int ValueDim { get; }
    public int Group { get; }
    public CudaActivation Activation { get; }
    /// <summary>HybridAttention only (COMPRESS); ignored otherwise.</summary>
    public CompressKind Compress { get; }

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

    /// <summary>hybrid_attention_compress: (batch * kv_heads, d_k) for linear, (batch * kv_heads, ceil((d_k + d_v) / 128)) for mean.</summary>
    public (int X, int Y) CompressGrid(int batch, int kvHeads) =>
        (batch * kvHeads, Compress == CompressKind.Linear ? HeadDim : CeilDiv(HeadDim + ValueDim, Threads));

    protected override IEnumerable<KernelDefine> SpecializationDefines()
    {
        yield return new("ACT_TYPE", (int)Activation);
        yield return new("HEAD_DIM", HeadDim);
        yield return new("VALUE_DIM", ValueDim);
        yield return new("GROUP", Group);
        if (Operator == CachePrefillOperator.Hybrid)
        {
            yield return new("COMPRESS", (int)Compress);
        }
    }
}
