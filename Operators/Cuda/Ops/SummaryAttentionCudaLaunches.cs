using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Cuda.Launch;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.SummaryAttention;

namespace OnnxAttention.Operators.Cuda.Ops;

/// <summary>Device pointers of one SummaryAttention call (0: input absent / output left out).</summary>
public readonly record struct SummaryAttentionDevice(
    nint Query, nint Key, nint Value, nint PastKeySummary, nint PastValueSummary, nint PastCount, nint PastKeyWindow,
    nint PastValueWindow, nint Output, nint PresentKeySummary, nint PresentValueSummary, nint PresentCount,
    nint PresentKeyWindow, nint PresentValueWindow);

/// <summary>
/// SummaryAttention on CUDA: one summary_attention_decode launch walks every token of the call (the kernel takes
/// any seq_len). Summaries and the moving window may be updated in place; the count never aliases (block h = 0
/// writes it while the other heads' blocks read it). NOT RUN ON A GPU YET.
/// </summary>
public static class SummaryAttentionCudaLaunches
{
    public static void Run(ICudaLauncher launcher, SummaryAttentionAttributes a, QkvShapes s, CudaActivation activation,
        in SummaryAttentionDevice d)
    {
        if (s.Batch == 0)
        {
            return; // every tensor is empty: nothing to launch (a grid of 0 blocks is a launch error)
        }
        var heads = a.Heads;
        var spec = new SummaryAttentionDecodeSpecialization(s.KeyDim, s.ValueDim, heads.GroupSize, a.Kind, a.NumSlots, activation);
        long kvHeadsTotal = (long)s.Batch * heads.KvHeads;
        var moving = a.Kind == SummaryKind.Moving;
        // One launch: the kernel's own token loop is the only "step".
        const int Steps = 1;

        using var scratch = new DeviceScratch(launcher);
        var keySummary = new ChainedState(scratch, d.PastKeySummary, d.PresentKeySummary, kvHeadsTotal * a.SummaryRows * s.KeyDim * 4, Steps,
            mayAlias: true, required: true);
        var valueSummary = new ChainedState(scratch, d.PastValueSummary, d.PresentValueSummary, kvHeadsTotal * a.SummaryRows * s.ValueDim * 4,
            Steps, mayAlias: true, required: true);
        var count = new ChainedState(scratch, d.PastCount, d.PresentCount, (long)s.Batch * sizeof(long), Steps, mayAlias: false, required: false);
        ChainedState? keyWindow = moving
            ? new(scratch, d.PastKeyWindow, d.PresentKeyWindow, kvHeadsTotal * a.WindowRows * s.KeyDim * 4, Steps, mayAlias: true, required: true)
            : null;
        ChainedState? valueWindow = moving
            ? new(scratch, d.PastValueWindow, d.PresentValueWindow, kvHeadsTotal * a.WindowRows * s.ValueDim * 4, Steps, mayAlias: true, required: true)
            : null;

        launcher.Launch(new KernelLaunch(spec, "summary_attention_decode", SummaryAttentionDecodeSpecialization.Grid(s.Batch, heads.KvHeads),
            spec.ThreadsPerBlock, 0,
        [
            KernelArgument.Pointer("query", d.Query),
            KernelArgument.Pointer("key", d.Key),
            KernelArgument.Pointer("value", d.Value),
            KernelArgument.Pointer("past_key_summary", keySummary.Source(0)),
            KernelArgument.Pointer("past_value_summary", valueSummary.Source(0)),
            KernelArgument.Pointer("past_count", count.Source(0)),
            KernelArgument.Pointer("past_key_window", keyWindow?.Source(0) ?? 0),
            KernelArgument.Pointer("past_value_window", valueWindow?.Source(0) ?? 0),
            KernelArgument.Pointer("output", d.Output),
            KernelArgument.Pointer("present_key_summary", keySummary.Destination(0)),
            KernelArgument.Pointer("present_value_summary", valueSummary.Destination(0)),
            KernelArgument.Pointer("present_count", count.Destination(0)),
            KernelArgument.Pointer("present_key_window", keyWindow?.Destination(0) ?? 0),
            KernelArgument.Pointer("present_value_window", valueWindow?.Destination(0) ?? 0),
            KernelArgument.Int("seq_len", s.SequenceLength),
            KernelArgument.Int("kv_heads", heads.KvHeads),
            KernelArgument.Int("window", moving ? a.Window : 0),
            KernelArgument.Float("alpha", a.Alpha),
            KernelArgument.Float("scale", heads.ScaleFor(s.KeyDim)),
        ]));
    }
}
