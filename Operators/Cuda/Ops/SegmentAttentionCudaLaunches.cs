using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Cuda.Launch;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.SegmentAttention;

namespace OnnxAttention.Operators.Cuda.Ops;

/// <summary>Device pointers of one SegmentAttention call (0: input absent / output left out).</summary>
public readonly record struct SegmentAttentionDevice(
    nint Query, nint Key, nint Value, nint PastMemoryKey, nint PastMemoryValue, nint PastSegmentKey, nint PastSegmentValue,
    nint PastPosition, nint Output, nint PresentMemoryKey, nint PresentMemoryValue, nint PresentSegmentKey,
    nint PresentSegmentValue, nint PresentPosition);

/// <summary>
/// SegmentAttention on CUDA. One token with separate past and present buffers: segment_attention_decode
/// (+ segment_attention_combine with split-K), which forbids aliasing. More tokens, or a state bound in place:
/// <see cref="CachePrefillCudaLaunches.Segment"/> (two launches per call, in-place safe: nothing is copied aside but
/// the position). An empty sequence copies the past to the present (<see cref="ChainedState"/>). NOT RUN ON A GPU YET.
/// </summary>
public static class SegmentAttentionCudaLaunches
{
    public static void Run(ICudaLauncher launcher, SegmentAttentionAttributes a, QkvShapes s, CudaActivation activation,
        in SegmentAttentionDevice d)
    {
        if (s.Batch == 0)
        {
            return; // every tensor is empty: nothing to launch (a grid of 0 blocks is a launch error)
        }
        if (CachePrefillCudaLaunches.Takes(s, (d.PastMemoryKey, d.PresentMemoryKey), (d.PastMemoryValue, d.PresentMemoryValue),
            (d.PastSegmentKey, d.PresentSegmentKey), (d.PastSegmentValue, d.PresentSegmentValue)))
        {
            CachePrefillCudaLaunches.Segment(launcher, a, s, activation, d);
            return;
        }
        var heads = a.Heads;
        var spec = new SegmentAttentionDecodeSpecialization(s.KeyDim, s.ValueDim, heads.GroupSize, activation);
        var steps = new TokenSteps(s, heads.QueryHeads, heads.KvHeads, activation);
        int t = s.SequenceLength, l = a.SegmentLength, perLaunch = steps.BatchPerLaunch;
        long keyBytes = (long)s.Batch * heads.KvHeads * l * s.KeyDim * 4, valueBytes = (long)s.Batch * heads.KvHeads * l * s.ValueDim * 4;

        using var scratch = new DeviceScratch(launcher);
        ChainedState Chain(nint past, nint present, long bytes, bool required) =>
            new(scratch, past, present, bytes, t, mayAlias: false, required);
        var memoryKey = Chain(d.PastMemoryKey, d.PresentMemoryKey, keyBytes, true);
        var memoryValue = Chain(d.PastMemoryValue, d.PresentMemoryValue, valueBytes, true);
        var segmentKey = Chain(d.PastSegmentKey, d.PresentSegmentKey, keyBytes, true);
        var segmentValue = Chain(d.PastSegmentValue, d.PresentSegmentValue, valueBytes, true);
        var position = Chain(d.PastPosition, d.PresentPosition, (long)s.Batch * sizeof(long), false);

        var splits = CacheDecodeSplits.Choose(2 * l, perLaunch * heads.KvHeads, launcher.MultiprocessorCount);
        var partials = SplitPartials.Allocate(scratch, splits, perLaunch * heads.QueryHeads, s.ValueDim);
        for (var token = 0; token < t; token++)
        {
            for (var row = 0; row < s.Batch; row += perLaunch)
            {
                long keyRow = steps.State(row, (long)l * s.KeyDim), valueRow = steps.State(row, (long)l * s.ValueDim);
                var output = TokenSteps.At(d.Output, steps.Output(row, token));
                launcher.Launch(new KernelLaunch(spec, "segment_attention_decode",
                    SegmentAttentionDecodeSpecialization.Grid(perLaunch, heads.KvHeads, splits), spec.ThreadsPerBlock, 0,
                [
                    KernelArgument.Pointer("query", TokenSteps.At(d.Query, steps.Query(row, token))),
                    KernelArgument.Pointer("key", TokenSteps.At(d.Key, steps.Key(row, token))),
                    KernelArgument.Pointer("value", TokenSteps.At(d.Value, steps.Value(row, token))),
                    KernelArgument.Pointer("past_memory_key", TokenSteps.At(memoryKey.Source(token), keyRow)),
                    KernelArgument.Pointer("past_memory_value", TokenSteps.At(memoryValue.Source(token), valueRow)),
                    KernelArgument.Pointer("past_segment_key", TokenSteps.At(segmentKey.Source(token), keyRow)),
                    KernelArgument.Pointer("past_segment_value", TokenSteps.At(segmentValue.Source(token), valueRow)),
                    KernelArgument.Pointer("past_position", TokenSteps.At(position.Source(token), row * sizeof(long))),
                    KernelArgument.Pointer("output", splits == 1 ? output : 0),
                    KernelArgument.Pointer("present_memory_key", TokenSteps.At(memoryKey.Destination(token), keyRow)),
                    KernelArgument.Pointer("present_memory_value", TokenSteps.At(memoryValue.Destination(token), valueRow)),
                    KernelArgument.Pointer("present_segment_key", TokenSteps.At(segmentKey.Destination(token), keyRow)),
                    KernelArgument.Pointer("present_segment_value", TokenSteps.At(segmentValue.Destination(token), valueRow)),
                    KernelArgument.Pointer("present_position", TokenSteps.At(position.Destination(token), row * sizeof(long))),
                    .. partials.Arguments(),
                    KernelArgument.Int("kv_heads", heads.KvHeads),
                    KernelArgument.Int("segment_length", l),
                    KernelArgument.Float("scale", heads.ScaleFor(s.KeyDim)),
                ]));
                if (splits > 1)
                {
                    launcher.Launch(new KernelLaunch(spec, "segment_attention_combine", spec.CombineGrid(perLaunch, heads.KvHeads),
                        SegmentAttentionDecodeSpecialization.Threads, 0,
                        partials.CombineArguments(splits, KernelArgument.Pointer("output", output))));
                }
            }
        }
    }
}
