namespace OnnxAttention.Operators.Cuda.Specializations;

/// <summary>
/// window_attention_decode.cu: window_attention_decode on grid <see cref="Grid"/> with 128 threads, then (when
/// splitting the cache rows over more than one block) window_attention_combine on <see cref="CombineGrid"/>.
/// </summary>
public sealed record WindowAttentionDecodeSpecialization : KernelSpecialization
{
    public const int Threads = 128;

    public WindowAttentionDecodeSpecialization(int headDim, int valueDim, int group, CudaActivation activation)
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

    public override KernelSource Source => KernelSources.WindowAttentionDecode;

    public override int ThreadsPerBlock => Threads;

    /// <summary>(batch * kv_heads, splits): split y owns cache rows [y R, min((y + 1) R, S + W)), R = ceil((S + W) / splits).</summary>
    public static (int X, int Y) Grid(int batch, int kvHeads, int splits) => (batch * kvHeads, splits);

    /// <summary>(batch * q_heads): one block per (batch row, query head).</summary>
    public (int X, int Y) CombineGrid(int batch, int kvHeads) => (batch * kvHeads * Group, 1);

    protected override IEnumerable<KernelDefine> SpecializationDefines()
    {
        yield return new("ACT_TYPE", (int)Activation);
        yield return new("HEAD_DIM", HeadDim);
        yield return new("VALUE_DIM", ValueDim);
        yield return new("GROUP", Group);
    }
}
