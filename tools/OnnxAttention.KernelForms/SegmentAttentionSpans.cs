using System.Buffers;
using System.Numerics.Tensors;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.SegmentAttention;

namespace OnnxAttention.KernelForms;

/// <summary>
/// The untuned form of <see cref="SegmentAttentionCpu"/>'s item: one span primitive per cached row (dot, then
/// multiply-add). Kept outside the operator library, run through
/// <see cref="KernelFormSwitch.Recurrent"/> = <see cref="RecurrentForm.Untuned"/>, so bench-ops --forms can time the
/// tuned item beside it in one run and tests can check the two agree.
/// </summary>
internal static unsafe class SegmentAttentionSpans
{
    /// <summary>Scratch up to this many floats lives on the stack.</summary>
    private const int StackScratchLimit = 4096;

    public static void RunItem(void* state, nint item)
    {
        var job = (SegmentAttentionCpu.Job*)state;
        ref readonly var a = ref *job;
        var sh = a.Shapes;
        int dk = sh.KeyDim, dv = sh.ValueDim, t = sh.SequenceLength, l = a.SegmentLength;
        var b = (int)(item / a.KvHeads);
        var kvHead = (int)(item % a.KvHeads);
        var head = (long)b * a.KvHeads + kvHead;

        var memoryKey = new Span<float>(a.MemoryKey + head * l * dk, l * dk);
        var memoryValue = new Span<float>(a.MemoryValue + head * l * dv, l * dv);
        var segmentKey = new Span<float>(a.SegmentKey + head * l * dk, l * dk);
        var segmentValue = new Span<float>(a.SegmentValue + head * l * dv, l * dv);
        var past = a.PastPosition[b];

        // The contract keeps rows that hold no token at zero, whatever the caller handed in there.
        var filled = (int)(past % l);
        if (past < l)
        {
            memoryKey.Clear();
            memoryValue.Clear();
        }
        segmentKey[(filled * dk)..].Clear();
        segmentValue[(filled * dv)..].Clear();
        if (t == 0)
        {
            return;
        }

        // At most L memory rows plus the min(L, p + 1) rows of the own segment are visible.
        var last = past + t - 1;
        var scratchLength = (last >= l ? l : 0) + (int)Math.Min(l, last + 1);
        float[]? rented = null;
        var scores = scratchLength <= StackScratchLimit
            ? stackalloc float[scratchLength]
            : (rented = ArrayPool<float>.Shared.Rent(scratchLength)).AsSpan(0, scratchLength);
        try
        {
            long qStride = (long)a.QueryHeads * dk, kStride = (long)a.KvHeads * dk, vStride = (long)a.KvHeads * dv;
            long yStride = (long)a.QueryHeads * dv;
            for (var i = 0; i < t; i++)
            {
                var row = (long)b * t + i;
                var position = past + i;
                var offset = (int)(position % l);
                new ReadOnlySpan<float>(a.Key + row * kStride + (long)kvHead * dk, dk).CopyTo(segmentKey.Slice(offset * dk, dk));
                new ReadOnlySpan<float>(a.Value + row * vStride + (long)kvHead * dv, dv).CopyTo(segmentValue.Slice(offset * dv, dv));
                var memoryRows = position >= l ? l : 0;
                var visible = memoryRows + offset + 1;

                for (var g = 0; g < a.GroupSize; g++)
                {
                    var qHead = kvHead * a.GroupSize + g;
                    var q = new ReadOnlySpan<float>(a.Query + row * qStride + (long)qHead * dk, dk);
                    var y = new Span<float>(a.Output + row * yStride + (long)qHead * dv, dv);
                    // Scores in position order: the previous segment, then the own segment up to this token.
                    for (var j = 0; j < memoryRows; j++)
                    {
                        scores[j] = a.Scale * TensorPrimitives.Dot(q, memoryKey.Slice(j * dk, dk));
                    }
                    for (var j = 0; j <= offset; j++)
                    {
                        scores[memoryRows + j] = a.Scale * TensorPrimitives.Dot(q, segmentKey.Slice(j * dk, dk));
                    }
                    var weights = scores[..visible];
                    var max = TensorPrimitives.Max(weights);
                    TensorPrimitives.Subtract(weights, max, weights);
                    TensorPrimitives.Exp(weights, weights);
                    var inverse = 1f / TensorPrimitives.Sum(weights);
                    y.Clear();
                    for (var j = 0; j < memoryRows; j++)
                    {
                        TensorPrimitives.MultiplyAdd(memoryValue.Slice(j * dv, dv), weights[j] * inverse, y, y);
                    }
                    for (var j = 0; j <= offset; j++)
                    {
                        TensorPrimitives.MultiplyAdd(segmentValue.Slice(j * dv, dv), weights[memoryRows + j] * inverse, y, y);
                    }
                }

                if (offset == l - 1)
                {
                    // The segment is full: it becomes the memory and the next token starts an empty segment.
                    segmentKey.CopyTo(memoryKey);
                    segmentValue.CopyTo(memoryValue);
                    segmentKey.Clear();
                    segmentValue.Clear();
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
}
