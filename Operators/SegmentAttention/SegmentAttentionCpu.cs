using System.Buffers;
using System.Numerics.Tensors;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.Simd;

namespace OnnxAttention.Operators.SegmentAttention;

/// <summary>
/// The float32 CPU recurrence, token by token so that a segment becomes the memory inside a prefill exactly as
/// it does across decode calls. Work is split by (batch, KV head): each item owns its slice of the memory and
/// segment buffers, so items never write the same memory. A query's scores and its weighted sum are one vector pass
/// each over the memory rows and over the own segment's rows (<see cref="Gemv"/>).
/// </summary>
internal static unsafe class SegmentAttentionCpu
{
    /// <summary>Scratch up to this many floats lives on the stack.</summary>
    private const int StackScratchLimit = 4096;

    public struct Job
    {
        // Copied out of the attributes record: the job is reached through a pointer, so it must be unmanaged.
        public int QueryHeads, KvHeads, SegmentLength;
        public float Scale;
        public QkvShapes Shapes;
        public float* Query, Key, Value, Output;
        // Present state, already holding the past state (or zeros) when the items start.
        public float* MemoryKey, MemoryValue, SegmentKey, SegmentValue;
        public long* PastPosition;
        // Auto in production; a test or benchmark's forced form otherwise (KernelForms).
        public RecurrentKernel Form;

        public readonly int GroupSize => QueryHeads / KvHeads;
    }

    public static void Run(in KernelContext context, ref Job job)
    {
        var items = (nint)job.Shapes.Batch * job.KvHeads;
        fixed (Job* p = &job)
        {
            var forms = context.Forms;
            job.Form = forms?.RecurrentKernel ?? RecurrentKernel.Auto;
            OrtParallel.For(context, items, p, forms is not null && forms.SegmentItem != null ? forms.SegmentItem : &RunItem);
        }
    }

    private static void RunItem(void* state, nint item)
    {
        var job = (Job*)state;
        ref readonly var a = ref *job;
        var sh = a.Shapes;
        int dk = sh.KeyDim, dv = sh.ValueDim, t = sh.SequenceLength, l = a.SegmentLength;
        var b = (int)(item / a.KvHeads);
        var kvHead = (int)(item % a.KvHeads);
        var head = (long)b * a.KvHeads + kvHead;

        var memoryKey = a.MemoryKey + head * l * dk;
        var memoryValue = a.MemoryValue + head * l * dv;
        var segmentKey = a.SegmentKey + head * l * dk;
        var segmentValue = a.SegmentValue + head * l * dv;
        var past = a.PastPosition[b];

        // The contract keeps rows that hold no token at zero, whatever the caller handed in there.
        var filled = (int)(past % l);
        if (past < l)
        {
            new Span<float>(memoryKey, l * dk).Clear();
            new Span<float>(memoryValue, l * dv).Clear();
        }
        new Span<float>(segmentKey + (long)filled * dk, (l - filled) * dk).Clear();
        new Span<float>(segmentValue + (long)filled * dv, (l - filled) * dv).Clear();
        if (t == 0)
        {
            return;
        }
        if (SegmentAttentionBlocks.Applies(a))
        {
            SegmentAttentionBlocks.Run(a, b, kvHead, memoryKey, memoryValue, segmentKey, segmentValue);
            return;
        }

        // At most L memory rows plus the min(L, p + 1) rows of the own segment are visible.
        var last = past + t - 1;
        var scratchLength = (last >= l ? l : 0) + (int)Math.Min(l, last + 1);
        float[]? rented = null;
        var scratch = scratchLength <= StackScratchLimit
            ? stackalloc float[scratchLength]
            : (rented = ArrayPool<float>.Shared.Rent(scratchLength)).AsSpan(0, scratchLength);
        try
        {
            fixed (float* scores = scratch)
            {
                long qStride = (long)a.QueryHeads * dk, kStride = (long)a.KvHeads * dk, vStride = (long)a.KvHeads * dv;
                long yStride = (long)a.QueryHeads * dv;
                for (var i = 0; i < t; i++)
                {
                    var row = (long)b * t + i;
                    var position = past + i;
                    var offset = (int)(position % l);
                    new ReadOnlySpan<float>(a.Key + row * kStride + (long)kvHead * dk, dk).CopyTo(new Span<float>(segmentKey + (long)offset * dk, dk));
                    new ReadOnlySpan<float>(a.Value + row * vStride + (long)kvHead * dv, dv).CopyTo(new Span<float>(segmentValue + (long)offset * dv, dv));
                    var memoryRows = position >= l ? l : 0;
                    var visible = memoryRows + offset + 1;

                    for (var g = 0; g < a.GroupSize; g++)
                    {
                        var qHead = kvHead * a.GroupSize + g;
                        var q = a.Query + row * qStride + (long)qHead * dk;
                        var y = a.Output + row * yStride + (long)qHead * dv;
                        // Scores in position order: the previous segment, then the own segment up to this token.
                        Gemv.Dots(q, dk, memoryKey, dk, memoryRows, scores);
                        Gemv.Dots(q, dk, segmentKey, dk, offset + 1, scores + memoryRows);
                        var max = Exponentials.ScaleAndMax(scores, visible, a.Scale);
                        var total = Exponentials.ExpSum(scores, visible, max);
                        Gemv.WeightedSum(scores, memoryValue, dv, memoryRows, dv, y, accumulate: false);
                        Gemv.WeightedSum(scores + memoryRows, segmentValue, dv, offset + 1, dv, y, accumulate: true);
                        var yHead = new Span<float>(y, dv);
                        TensorPrimitives.Multiply(yHead, 1f / total, yHead);
                    }

                    if (offset == l - 1)
                    {
                        // The segment is full: it becomes the memory and the next token starts an empty segment.
                        Rotate(memoryKey, memoryValue, segmentKey, segmentValue, l * dk, l * dv);
                    }
                }
            }
        }
        finally
        {
            if (rented != null)
            {
                ArrayPool<float>.Shared.Return(rented);
            }
        }
    }

    /// <summary>The full segment becomes the memory; the segment buffers are cleared for the next one.</summary>
    internal static void Rotate(float* memoryKey, float* memoryValue, float* segmentKey, float* segmentValue, int keyFloats, int valueFloats)
    {
        new Span<float>(segmentKey, keyFloats).CopyTo(new Span<float>(memoryKey, keyFloats));
        new Span<float>(segmentValue, valueFloats).CopyTo(new Span<float>(memoryValue, valueFloats));
        new Span<float>(segmentKey, keyFloats).Clear();
        new Span<float>(segmentValue, valueFloats).Clear();
    }
}
