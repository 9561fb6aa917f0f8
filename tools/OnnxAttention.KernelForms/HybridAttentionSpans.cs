using System.Buffers;
using System.Numerics.Tensors;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.KernelForms;

/// <summary>
/// The untuned form of <see cref="HybridAttentionCpu"/>'s item: one span primitive per cached row (dot, then
/// multiply-add). Kept outside the operator library, run through
/// <see cref="KernelFormSwitch.Recurrent"/> = <see cref="RecurrentForm.Untuned"/>, so bench-ops --forms can time the
/// tuned item beside it in one run and tests can check the two agree.
/// </summary>
internal static unsafe class HybridAttentionSpans
{
    /// <summary>Scratch up to this many floats lives on the stack.</summary>
    private const int StackScratchLimit = 4096;

    public static void RunItem(void* state, nint item)
    {
        var job = (HybridAttentionCpu.Job*)state;
        ref readonly var a = ref *job;
        var sh = a.Shapes;
        int dk = sh.KeyDim, dv = sh.ValueDim, t = sh.SequenceLength, w = a.Window;
        var linear = a.Compress == CompressKind.Linear;
        var b = (int)(item / a.KvHeads);
        var kvHead = (int)(item % a.KvHeads);
        var head = (long)b * a.KvHeads + kvHead;
        var rows = linear ? dk : 1;

        var keyRing = new Span<float>(a.KeyCache + head * w * dk, w * dk);
        var valueRing = new Span<float>(a.ValueCache + head * w * dv, w * dv);
        // linear: nu = sum phi(k) and mu = sum phi(k)^T v; mean: the key sum and the value sum.
        var compressedKey = new Span<float>(a.CompressedKey + head * dk, dk);
        var compressedValue = new Span<float>(a.CompressedValue + head * rows * dv, rows * dv);
        var past = a.PastPosition[b];

        // Scores for the window plus the mean slot; phi(k) or phi(q); the linear part's output.
        var scratchLength = w + 1 + dk + dv;
        float[]? rented = null;
        var scratch = scratchLength <= StackScratchLimit
            ? stackalloc float[scratchLength]
            : (rented = ArrayPool<float>.Shared.Rent(scratchLength)).AsSpan(0, scratchLength);
        try
        {
            var scores = scratch[..(w + 1)];
            var phi = scratch.Slice(w + 1, dk);
            var linearOut = scratch.Slice(w + 1 + dk, dv);
            long qStride = (long)a.QueryHeads * dk, kStride = (long)a.KvHeads * dk, vStride = (long)a.KvHeads * dv;
            long yStride = (long)a.QueryHeads * dv;
            for (var i = 0; i < t; i++)
            {
                var row = (long)b * t + i;
                var k = new ReadOnlySpan<float>(a.Key + row * kStride + (long)kvHead * dk, dk);
                var v = new ReadOnlySpan<float>(a.Value + row * vStride + (long)kvHead * dv, dv);
                var position = past + i;
                var slot = (int)(position % w);
                var keyRow = keyRing.Slice(slot * dk, dk);
                var valueRow = valueRing.Slice(slot * dv, dv);
                if (position >= w)
                {
                    // The row holds position - w, which leaves the window now.
                    Evict(linear, keyRow, valueRow, compressedKey, compressedValue, phi);
                }
                k.CopyTo(keyRow);
                v.CopyTo(valueRow);
                var inWindow = (int)Math.Min(position + 1, w);
                var evicted = position + 1 - inWindow;

                for (var g = 0; g < a.GroupSize; g++)
                {
                    var qHead = kvHead * a.GroupSize + g;
                    var q = new ReadOnlySpan<float>(a.Query + row * qStride + (long)qHead * dk, dk);
                    var y = new Span<float>(a.Output + row * yStride + (long)qHead * dv, dv);
                    // Rows [0, inWindow) are exactly the window: positions fill rows in order until the ring wraps.
                    var slots = inWindow;
                    for (var j = 0; j < inWindow; j++)
                    {
                        scores[j] = a.Scale * TensorPrimitives.Dot(q, keyRing.Slice(j * dk, dk));
                    }
                    var meanScale = 0f;
                    if (!linear && evicted > 0)
                    {
                        meanScale = (float)(1.0 / evicted);
                        scores[slots++] = a.Scale * meanScale * TensorPrimitives.Dot(q, compressedKey);
                    }
                    var weights = scores[..slots];
                    var max = TensorPrimitives.Max(weights);
                    TensorPrimitives.Subtract(weights, max, weights);
                    TensorPrimitives.Exp(weights, weights);
                    var total = TensorPrimitives.Sum(weights);
                    y.Clear();
                    for (var j = 0; j < inWindow; j++)
                    {
                        TensorPrimitives.MultiplyAdd(valueRing.Slice(j * dv, dv), weights[j] / total, y, y);
                    }
                    if (evicted == 0)
                    {
                        continue;
                    }
                    if (!linear)
                    {
                        TensorPrimitives.MultiplyAdd(compressedValue, weights[inWindow] / total * meanScale, y, y);
                        continue;
                    }
                    // Gate by token counts: the window speaks for inWindow tokens, the linear part for the evicted ones.
                    FeatureMaps.Apply(FeatureMap.EluPlusOne, q, 1f, phi);
                    linearOut.Clear();
                    for (var r = 0; r < dk; r++)
                    {
                        TensorPrimitives.MultiplyAdd(compressedValue.Slice(r * dv, dv), phi[r], linearOut, linearOut);
                    }
                    var normaliser = TensorPrimitives.Dot(phi, compressedKey) + a.Epsilon;
                    var gate = (float)((double)evicted / (position + 1));
                    TensorPrimitives.Multiply(y, 1f - gate, y);
                    TensorPrimitives.MultiplyAdd(linearOut, gate / normaliser, y, y);
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

    /// <summary>Folds the evicted token (key, value) into the compressed state.</summary>
    private static void Evict(bool linear, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        Span<float> compressedKey, Span<float> compressedValue, Span<float> phi)
    {
        if (!linear)
        {
            TensorPrimitives.Add(compressedKey, key, compressedKey);
            TensorPrimitives.Add(compressedValue, value, compressedValue);
            return;
        }
        var dv = value.Length;
        FeatureMaps.Apply(FeatureMap.EluPlusOne, key, 1f, phi);
        TensorPrimitives.Add(compressedKey, phi, compressedKey);
        for (var r = 0; r < phi.Length; r++)
        {
            var muRow = compressedValue.Slice(r * dv, dv);
            TensorPrimitives.MultiplyAdd(value, phi[r], muRow, muRow);
        }
    }
}
