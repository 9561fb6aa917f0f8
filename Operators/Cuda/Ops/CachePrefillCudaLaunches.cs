using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Cuda.Launch;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.SegmentAttention;
using OnnxAttention.Operators.WindowAttention;

namespace OnnxAttention.Operators.Cuda.Ops;

/// <summary>
/// The multi-token launch plans of WindowAttention, SegmentAttention and HybridAttention (<see cref="CachePrefillSpecialization"/>):
/// whatever the sequence length and batch, one attention launch (a block per batch row, KV head and token, reading only
/// the past state and this call's activations), then the state launches (hybrid: compress, then store; the others:
/// store), which read each present element's sources before writing it. So present states may be bound to the past
/// ones (updated in place, nothing copied), and outputs left out are simply not written. Only the position is copied
/// aside when bound in place (8 bytes a row: every store block reads it). Hybrid compress=hedgehog first writes the
/// learned features of the keys the call evicts to scratch (one more launch, reading only the past ring and the call's
/// keys), which the attention and compress launches read. NOT RUN ON A GPU YET.
/// </summary>
public static class CachePrefillCudaLaunches
{
    public static void Window(ICudaLauncher launcher, WindowAttentionAttributes a, QkvShapes s, bool sharedPosition,
        CudaActivation activation, in WindowAttentionDevice d)
    {
        var heads = a.Heads;
        var spec = new CachePrefillSpecialization(CachePrefillOperator.Window, s.KeyDim, s.ValueDim, heads.GroupSize, activation);
        using var plan = new CachePrefillPlan(launcher, spec, s, heads.KvHeads, d.PastPosition, d.PresentPosition,
            sharedPosition ? 1 : s.Batch);
        KernelArgument[] past =
        [
            KernelArgument.Pointer("past_key_cache", d.PastKeyCache),
            KernelArgument.Pointer("past_value_cache", d.PastValueCache),
            KernelArgument.Pointer("past_position", plan.PastPosition),
            KernelArgument.Int("position_stride", sharedPosition ? 0 : 1),
        ];
        KernelArgument window = KernelArgument.Int("window", a.Window), sinks = KernelArgument.Int("sinks", a.Sinks);
        plan.Attention(d.Query, d.Key, d.Value, past, d.Output,
            window, sinks, KernelArgument.Float("scale", heads.ScaleFor(s.KeyDim)), KernelArgument.Float("softcap", a.Softcap));
        plan.Store(a.CacheRows, d.Key, d.Value, past,
        [
            KernelArgument.Pointer("present_key_cache", d.PresentKeyCache),
            KernelArgument.Pointer("present_value_cache", d.PresentValueCache),
            KernelArgument.Pointer("present_position", plan.PresentPosition),
        ], window, sinks);
    }

    public static void Segment(ICudaLauncher launcher, SegmentAttentionAttributes a, QkvShapes s, CudaActivation activation,
        in SegmentAttentionDevice d)
    {
        var heads = a.Heads;
        var spec = new CachePrefillSpecialization(CachePrefillOperator.Segment, s.KeyDim, s.ValueDim, heads.GroupSize, activation);
        using var plan = new CachePrefillPlan(launcher, spec, s, heads.KvHeads, d.PastPosition, d.PresentPosition, s.Batch);
        KernelArgument[] past =
        [
            KernelArgument.Pointer("past_memory_key", d.PastMemoryKey),
            KernelArgument.Pointer("past_memory_value", d.PastMemoryValue),
            KernelArgument.Pointer("past_segment_key", d.PastSegmentKey),
            KernelArgument.Pointer("past_segment_value", d.PastSegmentValue),
            KernelArgument.Pointer("past_position", plan.PastPosition),
        ];
        var segmentLength = KernelArgument.Int("segment_length", a.SegmentLength);
        plan.Attention(d.Query, d.Key, d.Value, past, d.Output, segmentLength, KernelArgument.Float("scale", heads.ScaleFor(s.KeyDim)));
        plan.Store(a.SegmentLength, d.Key, d.Value, past,
        [
            KernelArgument.Pointer("present_memory_key", d.PresentMemoryKey),
            KernelArgument.Pointer("present_memory_value", d.PresentMemoryValue),
            KernelArgument.Pointer("present_segment_key", d.PresentSegmentKey),
            KernelArgument.Pointer("present_segment_value", d.PresentSegmentValue),
            KernelArgument.Pointer("present_position", plan.PresentPosition),
        ], segmentLength);
    }

    public static void Hybrid(ICudaLauncher launcher, HybridAttentionAttributes a, QkvShapes s, CudaActivation activation,
        in HybridAttentionDevice d)
    {
        var heads = a.Heads;
        var hedgehog = a.Compress == CompressKind.Hedgehog;
        var spec = new CachePrefillSpecialization(CachePrefillOperator.Hybrid, s.KeyDim, s.ValueDim, heads.GroupSize, activation, a.Compress,
            hedgehog ? a.Projections : 0);
        using var plan = new CachePrefillPlan(launcher, spec, s, heads.KvHeads, d.PastPosition, d.PresentPosition, s.Batch);
        KernelArgument[] pastRing =
        [
            KernelArgument.Pointer("past_key", d.PastKey),
            KernelArgument.Pointer("past_value", d.PastValue),
            KernelArgument.Pointer("past_position", plan.PastPosition),
        ];
        KernelArgument[] past =
        [
            .. pastRing,
            KernelArgument.Pointer("past_compressed_key", d.PastCompressedKey),
            KernelArgument.Pointer("past_compressed_value", d.PastCompressedValue),
        ];
        var window = KernelArgument.Int("window", a.Window);
        // compress=hedgehog: phi(k) of every key the call evicts, computed once for the attention and compress launches.
        var keyFeatures = hedgehog ? plan.Scratch(spec.FeaturesBytes(s.Batch, heads.KvHeads, s.SequenceLength)) : 0;
        if (hedgehog)
        {
            plan.State("hybrid_attention_features", CachePrefillSpecialization.FeaturesGrid(s.Batch, heads.KvHeads, s.SequenceLength), d.Key, d.Value,
            [
                .. pastRing,
                KernelArgument.Pointer("feature_key_weight", d.FeatureKeyWeight),
                KernelArgument.Pointer("feature_key_bias", d.FeatureKeyBias),
            ], [KernelArgument.Pointer("key_features", keyFeatures)], window);
        }
        plan.Attention(d.Query, d.Key, d.Value,
        [
            .. past,
            KernelArgument.Pointer("key_features", keyFeatures),
            KernelArgument.Pointer("feature_query_weight", d.FeatureQueryWeight),
            KernelArgument.Pointer("feature_query_bias", d.FeatureQueryBias),
            KernelArgument.Pointer("mix", d.Mix),
        ], d.Output, window, KernelArgument.Float("scale", heads.ScaleFor(s.KeyDim)), KernelArgument.Float("epsilon", a.Epsilon));
        if (d.PresentCompressedKey != 0 || d.PresentCompressedValue != 0)
        {
            plan.State("hybrid_attention_compress", spec.CompressGrid(s.Batch, heads.KvHeads), d.Key, d.Value,
                [.. past, KernelArgument.Pointer("key_features", keyFeatures)],
            [
                KernelArgument.Pointer("present_compressed_key", d.PresentCompressedKey),
                KernelArgument.Pointer("present_compressed_value", d.PresentCompressedValue),
            ], window);
        }
        plan.Store(a.Window, d.Key, d.Value, pastRing,
        [
            KernelArgument.Pointer("present_key", d.PresentKey),
            KernelArgument.Pointer("present_value", d.PresentValue),
            KernelArgument.Pointer("present_position", plan.PresentPosition),
        ], window);
    }

    /// <summary>
    /// Whether a decode-capable operator's call goes to its prefill plan: more than one token, or one token with any
    /// state bound as both past input and present output (a host updating it in place; the decode kernels forbid it).
    /// </summary>
    public static bool Takes(QkvShapes s, params ReadOnlySpan<(nint Past, nint Present)> pairs) =>
        s.SequenceLength > 1 || (s.SequenceLength == 1 && InPlace(pairs));

    /// <summary>Whether any state is bound as both past input and present output (a host updating it in place).</summary>
    public static bool InPlace(params ReadOnlySpan<(nint Past, nint Present)> pairs)
    {
        foreach (var (past, present) in pairs)
        {
            if (past != 0 && past == present)
            {
                return true;
            }
        }
        return false;
    }
}
