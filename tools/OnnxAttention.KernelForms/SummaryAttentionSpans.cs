using System.Numerics.Tensors;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.SummaryAttention;

namespace OnnxAttention.KernelForms;

/// <summary>
/// The untuned form of <see cref="SummaryAttentionCpu"/>'s item: one span primitive per cached row (dot, then
/// multiply-add). Kept outside the operator library, run through
/// <see cref="KernelFormSwitch.Recurrent"/> = <see cref="RecurrentForm.Untuned"/>, so bench-ops --forms can time the
/// tuned item beside it in one run and tests can check the two agree.
/// </summary>
internal static unsafe class SummaryAttentionSpans
{
    public static void RunItem(void* state, nint item)
    {
        var job = (SummaryAttentionCpu.Job*)state;
        ref readonly var a = ref *job;
        var sh = a.Shapes;
        int dk = sh.KeyDim, dv = sh.ValueDim, t = sh.SequenceLength, slots = a.Slots, m = a.Window;
        var b = (int)(item / a.KvHeads);
        var kvHead = (int)(item % a.KvHeads);
        var head = (long)b * a.KvHeads + kvHead;

        var keySums = new Span<float>(a.KeySummary + head * slots * dk, slots * dk);
        var valueSums = new Span<float>(a.ValueSummary + head * slots * dv, slots * dv);
        var keyRing = new Span<float>(a.KeyWindow + head * m * dk, m * dk);
        var valueRing = new Span<float>(a.ValueWindow + head * m * dv, m * dv);
        var past = a.PastCount[b];

        // One score and one divisor per summary slot, plus the current token's slot at index `slots`.
        Span<float> scores = stackalloc float[slots + 1];
        Span<float> inverse = stackalloc float[slots + 1];
        inverse[slots] = 1f;

        long qStride = (long)a.QueryHeads * dk, kStride = (long)a.KvHeads * dk, vStride = (long)a.KvHeads * dv;
        long yStride = (long)a.QueryHeads * dv;
        for (var i = 0; i < t; i++)
        {
            var row = (long)b * t + i;
            var k = new ReadOnlySpan<float>(a.Key + row * kStride + (long)kvHead * dk, dk);
            var v = new ReadOnlySpan<float>(a.Value + row * vStride + (long)kvHead * dv, dv);
            var position = past + i;
            Absorb(a, position, k, v, keySums, valueSums, keyRing, valueRing, inverse);

            for (var g = 0; g < a.GroupSize; g++)
            {
                var qHead = kvHead * a.GroupSize + g;
                var q = new ReadOnlySpan<float>(a.Query + row * qStride + (long)qHead * dk, dk);
                var y = new Span<float>(a.Output + row * yStride + (long)qHead * dv, dv);
                for (var s = 0; s < slots; s++)
                {
                    scores[s] = a.Scale * inverse[s] * TensorPrimitives.Dot(q, keySums.Slice(s * dk, dk));
                }
                scores[slots] = a.Scale * TensorPrimitives.Dot(q, k);
                var max = TensorPrimitives.Max(scores);
                var total = 0f;
                for (var s = 0; s <= slots; s++)
                {
                    scores[s] = MathF.Exp(scores[s] - max);
                    total += scores[s];
                }
                y.Clear();
                for (var s = 0; s < slots; s++)
                {
                    TensorPrimitives.MultiplyAdd(valueSums.Slice(s * dv, dv), scores[s] / total * inverse[s], y, y);
                }
                TensorPrimitives.MultiplyAdd(v, scores[slots] / total, y, y);
            }
        }
    }

    /// <summary>Takes the token at absolute <paramref name="position"/> into the summaries and sets each slot's divisor.</summary>
    private static void Absorb(in SummaryAttentionCpu.Job a, long position, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        Span<float> keySums, Span<float> valueSums, Span<float> keyRing, Span<float> valueRing, Span<float> inverse)
    {
        var n = position + 1;
        switch (a.Kind)
        {
            case SummaryKind.Cumulative:
                TensorPrimitives.Add(keySums, k, keySums);
                TensorPrimitives.Add(valueSums, v, valueSums);
                inverse[0] = (float)(1.0 / n);
                break;
            case SummaryKind.Moving:
                Slide(position, a.Window, k, keySums, keyRing);
                Slide(position, a.Window, v, valueSums, valueRing);
                inverse[0] = (float)(1.0 / Math.Min(n, a.Window));
                break;
            case SummaryKind.Ema:
                int dk = k.Length, dv = v.Length;
                for (var s = 0; s < a.Slots; s++)
                {
                    var alpha = a.SlotAlpha[s];
                    var ek = keySums.Slice(s * dk, dk);
                    var ev = valueSums.Slice(s * dv, dv);
                    TensorPrimitives.Multiply(ek, alpha, ek);
                    TensorPrimitives.MultiplyAdd(k, 1f - alpha, ek, ek);
                    TensorPrimitives.Multiply(ev, alpha, ev);
                    TensorPrimitives.MultiplyAdd(v, 1f - alpha, ev, ev);
                    // Bias correction: the EMA started from zero, so its weights sum to 1 - alpha^n.
                    inverse[s] = (float)(1.0 / (1.0 - Math.Pow(alpha, n)));
                }
                break;
            default:
                throw new InvalidOperationException($"unknown summary kind {a.Kind}");
        }
    }

    /// <summary>
    /// Moves one window (keys or values) forward by the token at <paramref name="position"/>: it replaces, in ring
    /// row position mod M, the token M places back, and the running sum follows. After each full lap the sum is
    /// recomputed from the ring, so rounding from the add/subtract pairs never builds up over more than M tokens.
    /// </summary>
    private static void Slide(long position, int window, ReadOnlySpan<float> x, Span<float> sum, Span<float> ring)
    {
        var d = x.Length;
        var row = ring.Slice((int)(position % window) * d, d);
        if (position >= window)
        {
            TensorPrimitives.Subtract(sum, row, sum);
        }
        x.CopyTo(row);
        if ((position + 1) % window == 0)
        {
            sum.Clear();
            for (var r = 0; r < window; r++)
            {
                TensorPrimitives.Add(sum, ring.Slice(r * d, d), sum);
            }
        }
        else
        {
            TensorPrimitives.Add(sum, x, sum);
        }
    }
}
