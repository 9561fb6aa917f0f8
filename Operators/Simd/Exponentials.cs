using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnnxAttention.Operators.Simd;

/// <summary>
/// The two passes of a softmax over a row of scores, each one loop: the span primitives would take four calls
/// (scale, max, subtract, exp, sum), and for rows of a few hundred scores their fixed cost per call is what counts.
/// </summary>
internal static unsafe class Exponentials
{
    /// <summary>x[i] *= scale; returns max x[i] (negative infinity when n is 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float ScaleAndMax(float* x, int n, float scale)
    {
        var max = float.NegativeInfinity;
        var i = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var s = Vector512.Create(scale);
            var m = Vector512.Create(float.NegativeInfinity);
            for (; i + 16 <= n; i += 16)
            {
                var v = Vector512.Load(x + i) * s;
                v.Store(x + i);
                m = Vector512.Max(m, v);
            }
            max = m.ToScalar();
            for (var lane = 1; lane < 16; lane++)
            {
                max = MathF.Max(max, m.GetElement(lane));
            }
        }
        for (; i < n; i++)
        {
            x[i] *= scale;
            max = MathF.Max(max, x[i]);
        }
        return max;
    }

    /// <summary>x[i] = exp(x[i] - max); returns the sum of the new x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float ExpSum(float* x, int n, float max)
    {
        if (!Vector512.IsHardwareAccelerated)
        {
            var span = new Span<float>(x, n);
            TensorPrimitives.Subtract(span, max, span);
            TensorPrimitives.Exp(span, span);
            return TensorPrimitives.Sum(span);
        }
        var i = 0;
        var m = Vector512.Create(max);
        var sum = Vector512<float>.Zero;
        for (; i + 16 <= n; i += 16)
        {
            var e = Vector512.Exp(Vector512.Load(x + i) - m);
            e.Store(x + i);
            sum += e;
        }
        var total = Vector512.Sum(sum);
        for (; i < n; i++)
        {
            x[i] = MathF.Exp(x[i] - max);
            total += x[i];
        }
        return total;
    }
}
