using OnnxAttention.Operators.HybridAttention;

namespace OnnxAttention.Operators.Cuda.Specializations;

/// <summary>
/// hybrid_attention_decode.cu: hybrid_attention_decode on <see cref="Grid"/> (the W ring rows, plus the mean slot for
/// compress=mean), hybrid_attention_combine with more than one split, and for compress=linear hybrid_attention_linear
/// on <see cref="LinearGrid"/>; all with 128 threads. Present buffers must not alias past ones.
/// </summary>
public sealed record HybridAttentionDecodeSpecialization : KernelSpecialization
{
    public const int Threads = 128;

    public HybridAttentionDecodeSpecialization(int headDim, int valueDim, int group, CompressKind compress, CudaActivation activation)
    {
        RequireRange(nameof(headDim), headDim, 1, 512);
        RequireRange(nameof(valueDim), valueDim, 1, 512);
        RequireRange(nameof(group), group, 1, 64);
        (HeadDim, ValueDim, Group, Compress, Activation) = (headDim, valueDim, group, compress, activation);
    }

    public int HeadDim { get; }
    public int ValueDim { get; }
    public int Group { get; }
    public CompressKind Compress { get; }
    public CudaActivation Activation { get; }

    public override KernelSource Source => KernelSources.HybridAttentionDecode;

    public override int ThreadsPerBlock => Threads;

    /// <summary>Rows the window kernel walks: the ring, plus one for the mean slot.</summary>
    public int Rows(int window) => Compress == CompressKind.Mean ? window + 1 : window;

    /// <summary>(batch * kv_heads, splits), splits in [1, <see cref="Rows"/>].</summary>
    public static (int X, int Y) Grid(int batch, int kvHeads, int splits) => (batch * kvHeads, splits);

    public (int X, int Y) CombineGrid(int batch, int kvHeads) => (batch * kvHeads * Group, 1);

    /// <summary>(batch * kv_heads, ceil(d_v / 32)).</summary>
    public (int X, int Y) LinearGrid(int batch, int kvHeads) => (batch * kvHeads, CeilDiv(ValueDim, 32));

    protected override IEnumerable<KernelDefine> SpecializationDefines()
    {
        yield return new("ACT_TYPE", (int)Activation);
        yield return new("HEAD_DIM", HeadDim);
        yield return new("VALUE_DIM", ValueDim);
        yield return new("GROUP", Group);
        yield return new("COMPRESS", (int)Compress);
    }
}
