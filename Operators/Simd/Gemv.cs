using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnnxAttention.Operators.Simd;

/// <summary>
/// The two matrix-vector products of one query against a block of cached rows: scores (one dot product per row)
/// and the weighted sum of rows. One call covers a whole block, so a window of W rows costs two calls, not 2W span
/// calls whose fixed cost dominates at head dims of 64 to 128.
/// </summary>
internal static unsafe class Gemv
{
    /// <summary>scores[j] = sum_c q[c] rows[j * stride + c] for j in [0, count).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dots(float* q, int d, float* rows, long stride, int count, float* scores)
    {
        var j = 0;
        if (Vector512.IsHardwareAccelerated && d >= 16)
        {
            var vectorEnd = d - d % 16;
            // Four rows at a time: four independent FMA chains share each load of q.
            for (; j + 4 <= count; j += 4)
            {
                var r0 = rows + j * stride;
                var r1 = r0 + stride;
                var r2 = r1 + stride;
                var r3 = r2 + stride;
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (var c = 0; c < vectorEnd; c += 16)
                {
                    var x = Vector512.Load(q + c);
                    a0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(r0 + c), a0);
                    a1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(r1 + c), a1);
                    a2 = Vector512.FusedMultiplyAdd(x, Vector512.Load(r2 + c), a2);
                    a3 = Vector512.FusedMultiplyAdd(x, Vector512.Load(r3 + c), a3);
                }
                float s0 = Vector512.Sum(a0), s1 = Vector512.Sum(a1), s2 = Vector512.Sum(a2), s3 = Vector512.Sum(a3);
                for (var c = vectorEnd; c < d; c++)
                {
                    s0 = MathF.FusedMultiplyAdd(q[c], r0[c], s0);
                    s1 = MathF.FusedMultiplyAdd(q[c], r1[c], s1);
                    s2 = MathF.FusedMultiplyAdd(q[c], r2[c], s2);
                    s3 = MathF.FusedMultiplyAdd(q[c], r3[c], s3);
                }
                scores[j] = s0;
                scores[j + 1] = s1;
                scores[j + 2] = s2;
                scores[j + 3] = s3;
            }
        }
        for (; j < count; j++)
        {
            scores[j] = System.Numerics.Tensors.TensorPrimitives.Dot(new ReadOnlySpan<float>(q, d), new ReadOnlySpan<float>(rows + j * stride, d));
        }
    }

    /// <summary>y[c] (+)= sum_j weights[j] rows[j * stride + c] for j in [0, count); y is cleared first unless accumulating.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void WeightedSum(float* weights, float* rows, long stride, int count, int d, float* y, bool accumulate)
    {
        if (!accumulate)
        {
            new Span<float>(y, d).Clear();
        }
        var c = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            // Strips of four vectors held in registers over all rows: y is loaded and stored once per strip.
            for (; c + 64 <= d; c += 64)
            {
                Vector512<float> y0 = Vector512.Load(y + c), y1 = Vector512.Load(y + c + 16), y2 = Vector512.Load(y + c + 32), y3 = Vector512.Load(y + c + 48);
                var p = rows + c;
                for (var j = 0; j < count; j++, p += stride)
                {
                    var w = Vector512.Create(weights[j]);
                    y0 = Vector512.FusedMultiplyAdd(w, Vector512.Load(p), y0);
                    y1 = Vector512.FusedMultiplyAdd(w, Vector512.Load(p + 16), y1);
                    y2 = Vector512.FusedMultiplyAdd(w, Vector512.Load(p + 32), y2);
                    y3 = Vector512.FusedMultiplyAdd(w, Vector512.Load(p + 48), y3);
                }
                y0.Store(y + c);
                y1.Store(y + c + 16);
                y2.Store(y + c + 32);
                y3.Store(y + c + 48);
            }
            for (; c + 16 <= d; c += 16)
            {
                var y0 = Vector512.Load(y + c);
                var p = rows + c;
                for (var j = 0; j < count; j++, p += stride)
                {
                    y0 = Vector512.FusedMultiplyAdd(Vector512.Create(weights[j]), Vector512.Load(p), y0);
                }
                y0.Store(y + c);
            }
        }
        for (; c + Vector<float>.Count <= d; c += Vector<float>.Count)
        {
            var y0 = Vector.Load(y + c);
            var p = rows + c;
            for (var j = 0; j < count; j++, p += stride)
            {
                y0 = Vector.FusedMultiplyAdd(new Vector<float>(weights[j]), Vector.Load(p), y0);
            }
            y0.Store(y + c);
        }
        for (; c < d; c++)
        {
            var acc = y[c];
            var p = rows + c;
            for (var j = 0; j < count; j++, p += stride)
            {
                acc = MathF.FusedMultiplyAdd(weights[j], *p, acc);
            }
            y[c] = acc;
        }
    }
}
