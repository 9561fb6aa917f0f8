using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Cuda.Launch;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.WindowAttention;

namespace OnnxAttention.Operators.Cuda.Ops;

/// <summary>Device pointers of one WindowAttention call (0: input absent / output left out).</summary>
public readonly record struct WindowAttentionDevice(
    nint Query, nint Key, nint Value, nint PastKeyCache, nint PastValueCache, nint PastPosition,
    nint Output, nint PresentKeyCache, nint PresentValueCache, nint PresentPosition);

/// <summary>
/// WindowAttention on CUDA. One token (or none): window_attention_decode (+ window_attention_combine with split-K)
/// over the whole batch; the caches may be updated in place (the kernel allows it); the position is copied aside when
/// bound in place. More tokens: <see cref="CachePrefillCudaLaunches.Window"/> (two launches per call). NOT RUN ON A GPU YET.
/// </summary>
public static class WindowAttentionCudaLaunches
{
    public static void Run(ICudaLauncher launcher, WindowAttentionAttributes a, QkvShapes s, bool sharedPosition,
        CudaActivation activation, in WindowAttentionDevice d)
    {
        if (s.Batch == 0)
        {
            return; // every tensor is empty: nothing to launch (a grid of 0 blocks is a launch error)
        }
        if (s.SequenceLength > 1)
        {
            CachePrefillCudaLaunches.Window(launcher, a, s, sharedPosition, activation, d);
            return;
        }
        var heads = a.Heads;
        var spec = new WindowAttentionDecodeSpecialization(s.KeyDim, s.ValueDim, heads.GroupSize, activation);
        var steps = new TokenSteps(s, heads.QueryHeads, heads.KvHeads, activation);
        int t = s.SequenceLength, rows = a.CacheRows, perLaunch = steps.BatchPerLaunch;
        long positions = sharedPosition ? 1 : s.Batch;

        using var scratch = new DeviceScratch(launcher);
        var keys = new ChainedState(scratch, d.PastKeyCache, d.PresentKeyCache, (long)s.Batch * heads.KvHeads * rows * s.KeyDim * 4, t,
            mayAlias: true, required: true);
        var values = new ChainedState(scratch, d.PastValueCache, d.PresentValueCache, (long)s.Batch * heads.KvHeads * rows * s.ValueDim * 4, t,
            mayAlias: true, required: true);
        var position = new ChainedState(scratch, d.PastPosition, d.PresentPosition, positions * sizeof(long), t, mayAlias: false, required: false);

        var splits = CacheDecodeSplits.Choose(rows, perLaunch * heads.KvHeads, launcher.MultiprocessorCount);
        var partials = SplitPartials.Allocate(scratch, splits, perLaunch * heads.QueryHeads, s.ValueDim);
        for (var token = 0; token < t; token++)
        {
            for (var row = 0; row < s.Batch; row += perLaunch)
            {
                var positionOffset = sharedPosition ? 0 : row * sizeof(long);
                var output = TokenSteps.At(d.Output, steps.Output(row, token));
                launcher.Launch(new KernelLaunch(spec, "window_attention_decode", WindowAttentionDecodeSpecialization.Grid(perLaunch, heads.KvHeads, splits),
                    spec.ThreadsPerBlock, 0,
                [
                    KernelArgument.Pointer("query", TokenSteps.At(d.Query, steps.Query(row, token))),
                    KernelArgument.Pointer("key", TokenSteps.At(d.Key, steps.Key(row, token))),
                    KernelArgument.Pointer("value", TokenSteps.At(d.Value, steps.Value(row, token))),
                    KernelArgument.Pointer("past_key_cache", TokenSteps.At(keys.Source(token), steps.State(row, (long)rows * s.KeyDim))),
                    KernelArgument.Pointer("past_value_cache", TokenSteps.At(values.Source(token), steps.State(row, (long)rows * s.ValueDim))),
                    KernelArgument.Pointer("past_position", TokenSteps.At(position.Source(token), positionOffset)),
                    KernelArgument.Int("position_stride", sharedPosition ? 0 : 1),
                    KernelArgument.Pointer("output", splits == 1 ? output : 0),
                    KernelArgument.Pointer("present_key_cache", TokenSteps.At(keys.Destination(token), steps.State(row, (long)rows * s.KeyDim))),
                    KernelArgument.Pointer("present_value_cache", TokenSteps.At(values.Destination(token), steps.State(row, (long)rows * s.ValueDim))),
                    KernelArgument.Pointer("present_position", TokenSteps.At(position.Destination(token), positionOffset)),
                    .. partials.Arguments(),
                    KernelArgument.Int("kv_heads", heads.KvHeads),
                    KernelArgument.Int("window", a.Window),
                    KernelArgument.Int("sinks", a.Sinks),
                    KernelArgument.Float("scale", heads.ScaleFor(s.KeyDim)),
                    KernelArgument.Float("softcap", a.Softcap),
                ]));
                if (splits > 1)
                {
                    launcher.Launch(new KernelLaunch(spec, "window_attention_combine", spec.CombineGrid(perLaunch, heads.KvHeads),
                        WindowAttentionDecodeSpecialization.Threads, 0,
                        partials.CombineArguments(splits, KernelArgument.Pointer("output", output))));
                }
            }
        }
    }
}
