using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.Simd;

namespace OnnxAttention.Operators.SummaryAttention;

/// <summary>
/// The float32 CPU recurrence. Work is split by (batch, KV head): each item owns its slice of the state, so items
/// never write the same memory. Summaries are kept as numerators (sums, or uncorrected EMAs) and divided only
/// inside the scores and the value mix, so no normalised copy of them is ever materialised.
/// </summary>
internal static unsafe class SummaryAttentionCpu
{
    public struct Job
    {
        // Copied out of the attributes record: the job is reached through a pointer, so it must be unmanaged.
        public int QueryHeads, KvHeads, Slots, Window;
        public SummaryKind Kind;
        public float Scale;
        public float* SlotAlpha;
        public QkvShapes Shapes;
        public float* Query, Key, Value, Output;
        // Present state, already holding the past state (or zeros) when the items start.
        public float* KeySummary, ValueSummary, KeyWindow, ValueWindow;
        public long* PastCount;

        public readonly int GroupSize => QueryHeads / KvHeads;
    }

    public static void Run(in KernelContext context, ref Job job)
    {
        var items = (nint)job.Shapes.Batch * job.KvHeads;
        fixed (Job* p = &job)
        {
            var forms = context.Forms;
            OrtParallel.For(context, items, p, forms is not null && forms.SummaryItem != null ? forms.SummaryItem : &RunItem);
        }
    }

    private static void RunItem(void* state, nint item)
    {
        var job = (Job*)state;
        ref readonly var a = ref *job;
        var sh = a.Shapes;
        int dk = sh.KeyDim, dv = sh.ValueDim, t = sh.SequenceLength, slots = a.Slots, m = a.Window;
        var b = (int)(item / a.KvHeads);
        var kvHead = (int)(item % a.KvHeads);
        var head = (long)b * a.KvHeads + kvHead;

        var keySums = a.KeySummary + head * slots * dk;
        var valueSums = a.ValueSummary + head * slots * dv;
        var keyRing = new Span<float>(a.KeyWindow + head * m * dk, m * dk);
        var valueRing = new Span<float>(a.ValueWindow + head * m * dv, m * dv);
        var past = a.PastCount[b];

        // One score and one divisor per summary slot, plus the current token's slot at index `slots`.
        var scores = stackalloc float[slots + 1];
        var inverse = stackalloc float[slots + 1];
        var weights = stackalloc float[slots];
        inverse[slots] = 1f;

        long qStride = (long)a.QueryHeads * dk, kStride = (long)a.KvHeads * dk, vStride = (long)a.KvHeads * dv;
        long yStride = (long)a.QueryHeads * dv;
        for (var i = 0; i < t; i++)
        {
            var row = (long)b * t + i;
            var k = a.Key + row * kStride + (long)kvHead * dk;
            var v = a.Value + row * vStride + (long)kvHead * dv;
            Absorb(a, past + i, k, v, keySums, valueSums, keyRing, valueRing, inverse);

            for (var g = 0; g < a.GroupSize; g++)
            {
                var qHead = kvHead * a.GroupSize + g;
                var q = a.Query + row * qStride + (long)qHead * dk;
                var y = a.Output + row * yStride + (long)qHead * dv;
                // The summaries are numerators: each slot's score and weight take its divisor.
                Gemv.Dots(q, dk, keySums, dk, slots, scores);
                Gemv.Dots(q, dk, k, dk, 1, scores + slots);
                TensorPrimitives.Multiply(new ReadOnlySpan<float>(scores, slots + 1), new ReadOnlySpan<float>(inverse, slots + 1), new Span<float>(scores, slots + 1));
                var max = Exponentials.ScaleAndMax(scores, slots + 1, a.Scale);
                var total = Exponentials.ExpSum(scores, slots + 1, max);
                TensorPrimitives.Multiply(new ReadOnlySpan<float>(scores, slots), new ReadOnlySpan<float>(inverse, slots), new Span<float>(weights, slots));
                Gemv.WeightedSum(weights, valueSums, dv, slots, dv, y, accumulate: false);
                Gemv.WeightedSum(scores + slots, v, dv, 1, dv, y, accumulate: true);
                var yHead = new Span<float>(y, dv);
                TensorPrimitives.Multiply(yHead, 1f / total, yHead);
            }
        }
    }

    /// <summary>Takes the token at absolute <paramref name="position"/> into the summaries and sets each slot's divisor.</summary>
    private static void Absorb(in Job a, long position, float* kp, float* vp, float* keySumsP, float* valueSumsP,
        Span<float> keyRing, Span<float> valueRing, float* inverse)
    {
        var dk = a.Shapes.KeyDim;
        var dv = a.Shapes.ValueDim;
        var k = new ReadOnlySpan<float>(kp, dk);
        var v = new ReadOnlySpan<float>(vp, dv);
        var keySums = new Span<float>(keySumsP, a.Slots * dk);
        var valueSums = new Span<float>(valueSumsP, a.Slots * dv);
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
                for (var s = 0; s < a.Slots; s++)
                {
                    var alpha = a.SlotAlpha[s];
                    var ek = keySums.Slice(s * dk, dk);
                    var ev = valueSums.Slice(s * dv, dv);
                    // ema = alpha ema + (1 - alpha) x, one pass each.
                    Blend(ek, alpha, k);
                    Blend(ev, alpha, v);
                    // Bias correction: the EMA started from zero, so its weights sum to 1 - alpha^n.
                    inverse[s] = (float)(1.0 / (1.0 - Math.Pow(alpha, n)));
                }
                break;
            default:
                throw new InvalidOperationException($"unknown summary kind {a.Kind}");
        }
    }

    /// <summary>e = alpha e + (1 - alpha) x in one pass.</summary>
    private static void Blend(Span<float> e, float alpha, ReadOnlySpan<float> x)
    {
        var rest = 1f - alpha;
        fixed (float* ep = e)
        fixed (float* xp = x)
        {
            var c = 0;
            var n = e.Length;
            if (Vector512.IsHardwareAccelerated)
            {
                var va = Vector512.Create(alpha);
                var vr = Vector512.Create(rest);
                for (; c + 16 <= n; c += 16)
                {
                    var x16 = Vector512.Load(xp + c) * vr;
                    Vector512.FusedMultiplyAdd(va, Vector512.Load(ep + c), x16).Store(ep + c);
                }
            }
            for (; c < n; c++)
            {
                ep[c] = MathF.FusedMultiplyAdd(alpha, ep[c], rest * xp[c]);
            }
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
