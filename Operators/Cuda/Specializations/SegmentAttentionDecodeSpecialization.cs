namespace OnnxAttention.Operators.Cuda.Specializations;

/// <summary>
/// segment_attention_decode.cu: segment_attention_decode on <see cref="Grid"/> with 128 threads, then (with more
/// than one split) segment_attention_combine on <see cref="CombineGrid"/>. Present buffers must not alias past ones.
/// </summary>
public sealed record SegmentAttentionDecodeSpecialization : KernelSpecialization
{
    public const int Threads = 128;

    public SegmentAttentionDecodeSpecialization(int headDim, int valueDim, int group, CudaActivation activation)
    {
        RequireRange(nameof(headDim), headDim, 1, 512);
        RequireRange(nameof(valueDim), valueDim, 1, 512);
        RequireRange(nameof(group), group, 1, 64);
        (HeadDim, ValueDim, Group, Activation) = (headDim, valueDim, group, activation);
    }

    public int HeadDim { get; }
    public int ValueDim { get; }
    public int Group { get; }
    public CudaActivation Activation { get; }

    public override KernelSource Source => KernelSources.SegmentAttentionDecode;

    public override int ThreadsPerBlock => Threads;

    /// <summary>(batch * kv_heads, splits), splits in [1, 2 * segment_length].</summary>
    public static (int X, int Y) Grid(int batch, int kvHeads, int splits) => (batch * kvHeads, splits);

    public (int X, int Y) CombineGrid(int batch, int kvHeads) => (batch * kvHeads * Group, 1);

    protected override IEnumerable<KernelDefine> SpecializationDefines()
    {
        yield return new("ACT_TYPE", (int)Activation);
        yield return new("HEAD_DIM", HeadDim);
        yield return new("VALUE_DIM", ValueDim);
        yield return new("GROUP", Group);
    }
}
