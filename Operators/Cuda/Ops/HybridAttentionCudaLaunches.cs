using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Cuda.Launch;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.HybridAttention;

namespace OnnxAttention.Operators.Cuda.Ops;

/// <summary>
/// Device pointers of one HybridAttention call (0: input absent / output left out); the feature maps and mix are
/// compress=hedgehog's inputs (HybridAttentionContract.FeatureQueryWeight ..), 0 for the other kinds.
/// </summary>
public readonly record struct HybridAttentionDevice(
    nint Query, nint Key, nint Value, nint PastKey, nint PastValue, nint PastPosition, nint PastCompressedKey,
    nint PastCompressedValue, nint Output, nint PresentKey, nint PresentValue, nint PresentPosition,
    nint PresentCompressedKey, nint PresentCompressedValue,
    nint FeatureQueryWeight = 0, nint FeatureQueryBias = 0, nint FeatureKeyWeight = 0, nint FeatureKeyBias = 0, nint Mix = 0);

/// <summary>
/// HybridAttention on CUDA. One token with separate past and present buffers: hybrid_attention_decode over the ring
/// (and the mean slot), hybrid_attention_combine with split-K, and for compress=linear hybrid_attention_linear, which
/// evicts the past ring's row into the linear state and mixes the two outputs (these forbid aliasing). More tokens,
/// a state bound in place, or compress=hedgehog (whose decode step is the prompt kernels' one-token call):
/// <see cref="CachePrefillCudaLaunches.Hybrid"/> (three launches per call, four for hedgehog; in-place safe).
/// NOT RUN ON A GPU YET.
/// </summary>
public static class HybridAttentionCudaLaunches
{
    public static void Run(ICudaLauncher launcher, HybridAttentionAttributes a, QkvShapes s, CudaActivation activation,
        in HybridAttentionDevice d)
    {
        if (s.Batch == 0)
        {
            return; // every tensor is empty: nothing to launch (a grid of 0 blocks is a launch error)
        }
        if ((a.Compress == CompressKind.Hedgehog && s.SequenceLength > 0) ||
            CachePrefillCudaLaunches.Takes(s, (d.PastKey, d.PresentKey), (d.PastValue, d.PresentValue),
            (d.PastCompressedKey, d.PresentCompressedKey), (d.PastCompressedValue, d.PresentCompressedValue)))
        {
            CachePrefillCudaLaunches.Hybrid(launcher, a, s, activation, d);
            return;
        }
        var heads = a.Heads;
        var spec = new HybridAttentionDecodeSpecialization(s.KeyDim, s.ValueDim, heads.GroupSize, a.Compress, activation);
        var steps = new TokenSteps(s, heads.QueryHeads, heads.KvHeads, activation);
        int t = s.SequenceLength, w = a.Window, perLaunch = steps.BatchPerLaunch, compressedRows = a.CompressedValueRows(s.KeyDim);
        var linear = a.Compress == CompressKind.Linear;
        long kvHeadsTotal = (long)s.Batch * heads.KvHeads;

        using var scratch = new DeviceScratch(launcher);
        ChainedState Chain(nint past, nint present, long bytes, bool required) =>
            new(scratch, past, present, bytes, t, mayAlias: false, required);
        var ringKey = Chain(d.PastKey, d.PresentKey, kvHeadsTotal * w * s.KeyDim * 4, true);
        var ringValue = Chain(d.PastValue, d.PresentValue, kvHeadsTotal * w * s.ValueDim * 4, true);
        var position = Chain(d.PastPosition, d.PresentPosition, (long)s.Batch * sizeof(long), false);
        var compressedKey = Chain(d.PastCompressedKey, d.PresentCompressedKey, kvHeadsTotal * a.CompressedKeyDim(s.KeyDim) * 4, true);
        var compressedValue = Chain(d.PastCompressedValue, d.PresentCompressedValue, kvHeadsTotal * compressedRows * s.ValueDim * 4, true);

        var splits = CacheDecodeSplits.Choose(spec.Rows(w), perLaunch * heads.KvHeads, launcher.MultiprocessorCount);
        var partials = SplitPartials.Allocate(scratch, splits, perLaunch * heads.QueryHeads, s.ValueDim);
        // compress=linear: y_window, float32 [batch per launch * q_heads, d_v], read by hybrid_attention_linear.
        var windowOutput = linear ? scratch.Allocate((long)perLaunch * heads.QueryHeads * s.ValueDim * 4) : 0;
        for (var token = 0; token < t; token++)
        {
            for (var row = 0; row < s.Batch; row += perLaunch)
            {
                long keyRing = steps.State(row, (long)w * s.KeyDim), valueRing = steps.State(row, (long)w * s.ValueDim);
                long nu = steps.State(row, s.KeyDim), mu = steps.State(row, (long)compressedRows * s.ValueDim);
                var positionAt = row * sizeof(long);
                var output = TokenSteps.At(d.Output, steps.Output(row, token));
                launcher.Launch(new KernelLaunch(spec, "hybrid_attention_decode",
                    HybridAttentionDecodeSpecialization.Grid(perLaunch, heads.KvHeads, splits), spec.ThreadsPerBlock, 0,
                [
                    KernelArgument.Pointer("query", TokenSteps.At(d.Query, steps.Query(row, token))),
                    KernelArgument.Pointer("key", TokenSteps.At(d.Key, steps.Key(row, token))),
                    KernelArgument.Pointer("value", TokenSteps.At(d.Value, steps.Value(row, token))),
                    KernelArgument.Pointer("past_key", TokenSteps.At(ringKey.Source(token), keyRing)),
                    KernelArgument.Pointer("past_value", TokenSteps.At(ringValue.Source(token), valueRing)),
                    KernelArgument.Pointer("past_position", TokenSteps.At(position.Source(token), positionAt)),
                    KernelArgument.Pointer("past_compressed_key", TokenSteps.At(compressedKey.Source(token), nu)),
                    KernelArgument.Pointer("past_compressed_value", linear ? 0 : TokenSteps.At(compressedValue.Source(token), mu)),
                    KernelArgument.Pointer("output", !linear && splits == 1 ? output : 0),
                    KernelArgument.Pointer("window_output", linear && splits == 1 ? windowOutput : 0),
                    KernelArgument.Pointer("present_key", TokenSteps.At(ringKey.Destination(token), keyRing)),
                    KernelArgument.Pointer("present_value", TokenSteps.At(ringValue.Destination(token), valueRing)),
                    KernelArgument.Pointer("present_position", TokenSteps.At(position.Destination(token), positionAt)),
                    KernelArgument.Pointer("present_compressed_key", linear ? 0 : TokenSteps.At(compressedKey.Destination(token), nu)),
                    KernelArgument.Pointer("present_compressed_value", linear ? 0 : TokenSteps.At(compressedValue.Destination(token), mu)),
                    .. partials.Arguments(),
                    KernelArgument.Int("kv_heads", heads.KvHeads),
                    KernelArgument.Int("window", w),
                    KernelArgument.Float("scale", heads.ScaleFor(s.KeyDim)),
                ]));
                if (splits > 1)
                {
                    launcher.Launch(new KernelLaunch(spec, "hybrid_attention_combine", spec.CombineGrid(perLaunch, heads.KvHeads),
                        HybridAttentionDecodeSpecialization.Threads, 0, partials.CombineArguments(splits,
                            KernelArgument.Pointer("output", linear ? 0 : output),
                            KernelArgument.Pointer("window_output", linear ? windowOutput : 0))));
                }
                if (linear)
                {
                    launcher.Launch(new KernelLaunch(spec, "hybrid_attention_linear", spec.LinearGrid(perLaunch, heads.KvHeads),
                        HybridAttentionDecodeSpecialization.Threads, 0,
                    [
                        KernelArgument.Pointer("query", TokenSteps.At(d.Query, steps.Query(row, token))),
                        KernelArgument.Pointer("past_key", TokenSteps.At(ringKey.Source(token), keyRing)),
                        KernelArgument.Pointer("past_value", TokenSteps.At(ringValue.Source(token), valueRing)),
                        KernelArgument.Pointer("past_position", TokenSteps.At(position.Source(token), positionAt)),
                        KernelArgument.Pointer("past_compressed_key", TokenSteps.At(compressedKey.Source(token), nu)),
                        KernelArgument.Pointer("past_compressed_value", TokenSteps.At(compressedValue.Source(token), mu)),
                        KernelArgument.Pointer("window_output", windowOutput),
                        KernelArgument.Pointer("output", output),
                        KernelArgument.Pointer("present_compressed_key", TokenSteps.At(compressedKey.Destination(token), nu)),
                        KernelArgument.Pointer("present_compressed_value", TokenSteps.At(compressedValue.Destination(token), mu)),
                        KernelArgument.Int("kv_heads", heads.KvHeads),
                        KernelArgument.Int("window", w),
                        KernelArgument.Float("epsilon", a.Epsilon),
                    ]));
                }
            }
        }
    }
}
