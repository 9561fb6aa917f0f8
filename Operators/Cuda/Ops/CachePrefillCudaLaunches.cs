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
/// aside when bound in place (8 bytes a row: every store block reads it). NOT RUN ON A GPU YET.
/// </summary>
public static class CachePrefillCudaLaunches
{
    public static void Window(ICudaLauncher launcher, WindowAttentionAttributes a, QkvShapes s, bool sharedPosition,
        CudaActivation activation, in WindowAttentionDevice d)
    {
        var heads = a.Heads;
        var spec = new CachePrefillSpecialization(CachePrefillOperator.Window, s.KeyDim, s.ValueDim, heads.GroupSize, activation);
        using var scratch = new DeviceScratch(launcher);
        var position = new ChainedState(scratch, d.PastPosition, d.PresentPosition, (sharedPosition ? 1 : s.Batch) * sizeof(long), 1,
            mayAlias: false, required: false);
        var stride = KernelArgument.Int("position_stride", sharedPosition ? 0 : 1);
        launcher.Launch(new KernelLaunch(spec, spec.AttentionEntry, CachePrefillSpecialization.AttentionGrid(s.Batch, heads.KvHeads, s.SequenceLength),
            spec.ThreadsPerBlock, 0,
        [
            KernelArgument.Pointer("query", d.Query),
            KernelArgument.Pointer("key", d.Key),
            KernelArgument.Pointer("value", d.Value),
            KernelArgument.Pointer("past_key_cache", d.PastKeyCache),
            KernelArgument.Pointer("past_value_cache", d.PastValueCache),
            KernelArgument.Pointer("past_position", position.Source(0)),
            stride,
            KernelArgument.Pointer("output", d.Output),
            KernelArgument.Int("seq_len", s.SequenceLength),
            KernelArgument.Int("kv_heads", heads.KvHeads),
            KernelArgument.Int("window", a.Window),
            KernelArgument.Int("sinks", a.Sinks),
            KernelArgument.Float("scale", heads.ScaleFor(s.KeyDim)),
            KernelArgument.Float("softcap", a.Softcap),
        ]));
        launcher.Launch(new KernelLaunch(spec, spec.StoreEntry, CachePrefillSpecialization.StoreGrid(s.Batch, heads.KvHeads, a.CacheRows),
            spec.ThreadsPerBlock, 0,
        [
            KernelArgument.Pointer("key", d.Key),
            KernelArgument.Pointer("value", d.Value),
            KernelArgument.Pointer("past_key_cache", d.PastKeyCache),
            KernelArgument.Pointer("past_value_cache", d.PastValueCache),
            KernelArgument.Pointer("past_position", position.Source(0)),
            stride,
            KernelArgument.Pointer("present_key_cache", d.PresentKeyCache),
            KernelArgument.Pointer("present_value_cache", d.PresentValueCache),
            KernelArgument.Pointer("present_position", position.Destination(0)),
            KernelArgument.Int("seq_len", s.SequenceLength),
            KernelArgument.Int("kv_heads", heads.KvHeads),
            KernelArgument.Int("window", a.Window),
            KernelArgument.Int("sinks", a.Sinks),
        ]));
    }

    public static void Segment(ICudaLauncher launcher, SegmentAttentionAttributes a, QkvShapes s, CudaActivation activation,
        in SegmentAttentionDevice d)
    {
        var heads = a.Heads;
        var spec = new CachePrefillSpecialization(CachePrefillOperator.Segment, s.KeyDim, s.ValueDim, heads.GroupSize, activation);
        using var scratch = new DeviceScratch(launcher);
        var position = new ChainedState(scratch, d.PastPosition, d.PresentPosition, (long)s.Batch * sizeof(long), 1,
            mayAlias: false, required: false);
        launcher.Launch(new KernelLaunch(spec, spec.AttentionEntry, CachePrefillSpecialization.AttentionGrid(s.Batch, heads.KvHeads, s.SequenceLength),
            spec.ThreadsPerBlock, 0,
        [
            KernelArgument.Pointer("query", d.Query),
            KernelArgument.Pointer("key", d.Key),
            KernelArgument.Pointer("value", d.Value),
            KernelArgument.Pointer("past_memory_key", d.PastMemoryKey),
            KernelArgument.Pointer("past_memory_value", d.PastMemoryValue),
            KernelArgument.Pointer("past_segment_key", d.PastSegmentKey),
            KernelArgument.Pointer("past_segment_value", d.PastSegmentValue),
            KernelArgument.Pointer("past_position", position.Source(0)),
            KernelArgument.Pointer("output", d.Output),
            KernelArgument.Int("seq_len", s.SequenceLength),
            KernelArgument.Int("kv_heads", heads.KvHeads),
            KernelArgument.Int("segment_length", a.SegmentLength),
            KernelArgument.Float("scale", heads.ScaleFor(s.KeyDim)),
        ]));
        launcher.Launch(new KernelLaunch(spec, spec.StoreEntry, CachePrefillSpecialization.StoreGrid(s.Batch, heads.KvHeads, a.SegmentLength),
            spec.ThreadsPerBlock, 0,
        [
            KernelArgument.Pointer("key", d.Key),
            KernelArgument.Pointer("value", d.Value),
            KernelArgument.Pointer("past_memory_key", d.PastMemoryKey),
            KernelArgument.Pointer("past_memory_value", d.PastMemoryValue),
            KernelArgument.Pointer("past_segment_key", d.PastSegmentKey),
            KernelArgument.Pointer("past_segment_value", d.PastSegmentValue),
            KernelArgument.Pointer("past_position", position.Source(0)),
            KernelArgument.Pointer("present_memory_key", d.PresentMemoryKey),
            KernelArgument.Pointer("present_memory_value", d.PresentMemoryValue),
            KernelArgument.Pointer("present_segment_key", d.PresentSegmentKey),
            KernelArgument.Pointer("present_segment_value", d.PresentSegmentValue),
            KernelArgument.Pointer("present_position", position.Destination(0)),
            KernelArgument.Int("seq_len", s.SequenceLength),
            KernelArgument.Int("kv_heads", heads.KvHeads),
            KernelArgument.Int("segment_length", a.SegmentLength),
        ]));
    }

    public static void Hybrid(ICudaLauncher launcher, HybridAttentionAttributes a, QkvShapes s, CudaActivation activation,
        in HybridAttentionDevice d)
    {
        var heads = a.Heads;
        var spec = new CachePrefillSpecialization(CachePrefillOperator.Hybrid, s.KeyDim, s.ValueDim, heads.GroupSize, activation, a.Compress);
        using var scratch = new DeviceScratch(launcher);
        var position = new ChainedState(scratch, d.PastPosition, d.PresentPosition, (long)s.Batch * sizeof(long), 1,
            mayAlias: false, required: false);
        var pastPosition = position.Source(0);
        launcher.Launch(new KernelLaunch(spec, spec.AttentionEntry, CachePrefillSpecialization.AttentionGrid(s.Batch, heads.KvHeads, s.SequenceLength),
            spec.ThreadsPerBlock, 0,
        [
            KernelArgument.Pointer("query", d.Query),
            KernelArgument.Pointer("key", d.Key),
            KernelArgument.Pointer("value", d.Value),
            KernelArgument.Pointer("past_key", d.PastKey),
            KernelArgument.Pointer("past_value", d.PastValue),
            KernelArgument.Pointer("past_position", pastPosition),
            KernelArgument.Pointer("past_compressed_key", d.PastCompressedKey),
            KernelArgument.Pointer("past_compressed_value", d.PastCompressedValue),
            KernelArgument.Pointer("output", d.Output),
            KernelArgument.Int("seq_len", s.SequenceLength),
            KernelArgument.Int("kv_heads", heads.KvHeads),
            KernelArgument.Int("window", a.Window),
            KernelArgument.Float("scale", heads.ScaleFor(s.KeyDim)),
            KernelArgument.Float("epsilon", a.Epsilon),
        ]));
        if (d.PresentCompressedKey != 0 || d.PresentCompressedValue != 0)
        {
            launcher.Launch(new KernelLaunch(spec, "hybrid_attention_compress", spec.CompressGrid(s.Batch, heads.KvHeads),
                spec.ThreadsPerBlock, 0,
            [
                KernelArgument.Pointer("key", d.Key),
                KernelArgument.Pointer("value", d.Value),
                KernelArgument.Pointer("past_key", d.PastKey),
                KernelArgument.Pointer("past_value", d.PastValue),
                KernelArgument.Pointer("past_position", pastPosition),
                KernelArgument.Pointer("past_compressed_key", d.PastCompressedKey),
                KernelArgument.Pointer("past_compressed_value", d.PastCompressedValue),
                KernelArgument.Pointer("present_compressed_key", d.PresentCompressedKey),
                KernelArgument.Pointer("present_compressed_value", d.PresentCompressedValue),
                KernelArgument.Int("seq_len", s.SequenceLength),
                KernelArgument.Int("kv_heads", heads.KvHeads),
                KernelArgument.Int("window", a.Window),
            ]));
        }
        launcher.Launch(new KernelLaunch(spec, spec.StoreEntry, CachePrefillSpecialization.StoreGrid(s.Batch, heads.KvHeads, a.Window),
            spec.ThreadsPerBlock, 0,
        [
            KernelArgument.Pointer("key", d.Key),
            KernelArgument.Pointer("value", d.Value),
            KernelArgument.Pointer("past_key", d.PastKey),
            KernelArgument.Pointer("past_value", d.PastValue),
            KernelArgument.Pointer("past_position", pastPosition),
            KernelArgument.Pointer("present_key", d.PresentKey),
            KernelArgument.Pointer("present_value", d.PresentValue),
            KernelArgument.Pointer("present_position", position.Destination(0)),
            KernelArgument.Int("seq_len", s.SequenceLength),
            KernelArgument.Int("kv_heads", heads.KvHeads),
            KernelArgument.Int("window", a.Window),
        ]));
    }

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
