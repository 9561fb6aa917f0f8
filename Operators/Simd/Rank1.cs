using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnnxAttention.Operators.Simd;

/// <summary>
/// A += x vᵀ for a small row-major matrix (head_dim x v_head_dim), one loop: as dk span calls of length dv, the fixed
/// cost per call is most of the time at head dims of 64 to 128.
/// </summary>
internal static unsafe class Rank1
{
    /// <summary>a[r * n + c] += x[r] v[c] for r in [0, m), c in [0, n).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Add(float* x, int m, float* v, int n, float* a)
    {
        for (var r = 0; r < m; r++)
        {
            var row = a + (long)r * n;
            var xr = x[r];
            var c = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var s = Vector512.Create(xr);
                for (; c + 16 <= n; c += 16)
                {
                    Vector512.FusedMultiplyAdd(s, Vector512.Load(v + c), Vector512.Load(row + c)).Store(row + c);
                }
            }
            var sv = new Vector<float>(xr);
            for (; c + Vector<float>.Count <= n; c += Vector<float>.Count)
            {
                Vector.FusedMultiplyAdd(sv, Vector.Load(v + c), Vector.Load(row + c)).Store(row + c);
            }
            for (; c < n; c++)
            {
                row[c] = MathF.FusedMultiplyAdd(xr, v[c], row[c]);
            }
        }
    }
}
