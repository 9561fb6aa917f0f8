using OnnxAttention.Operators.SummaryAttention;

namespace OnnxAttention.Operators.Cuda.Specializations;

/// <summary>summary_attention_decode.cu: grid (batch * kv_heads), 128 threads, no dynamic shared memory.</summary>
public sealed record SummaryAttentionDecodeSpecialization : KernelSpecialization
{
    public const int Threads = 128;

    public SummaryAttentionDecodeSpecialization(int headDim, int valueDim, int group, SummaryKind kind, int slots,
        CudaActivation activation)
    {
        RequireRange(nameof(headDim), headDim, 1, 1024);
        RequireRange(nameof(valueDim), valueDim, 1, 1024);
        RequireRange(nameof(group), group, 1, 64);
        RequireRange(nameof(slots), slots, 1, kind == SummaryKind.Ema ? 16 : 1);
        (HeadDim, ValueDim, Group, Kind, Slots, Activation) = (headDim, valueDim, group, kind, slots, activation);
    }

    public int HeadDim { get; }
    public int ValueDim { get; }
    public int Group { get; }
    public SummaryKind Kind { get; }
    public int Slots { get; }
    public CudaActivation Activation { get; }

    public override KernelSource Source => KernelSources.SummaryAttentionDecode;

    public override int ThreadsPerBlock => Threads;

    public static (int X, int Y) Grid(int batch, int kvHeads) => (batch * kvHeads, 1);

    protected override IEnumerable<KernelDefine> SpecializationDefines()
    {
        yield return new("ACT_TYPE", (int)Activation);
        yield return new("HEAD_DIM", HeadDim);
        yield return new("VALUE_DIM", ValueDim);
        yield return new("GROUP", Group);
        yield return new("SUMMARY_KIND", (int)Kind);
        yield return new("SLOTS", Slots);
    }
}
