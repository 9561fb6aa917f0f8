using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using OnnxAttention.Operators.Simd;

namespace OnnxAttention.Operators.LinearAttention;

/// <summary>
/// The two passes over one head's state S [d_k x d_v] (row r = key dimension) that each token makes. They walk S by
/// column tiles and keep the per-column sums (retrieval, or up to four query heads' readouts) in registers across all
/// rows, so every state element is loaded and stored once per pass. Calling a span primitive per row instead costs
/// one call per row and head, and its loads and stores of the sums dominate at head dims of 64 to 128 (measured:
/// about 3x slower at d = 128, 4 query heads per KV head). Columns go 512 bits at a time where the hardware has it,
/// then <see cref="Vector{T}"/> wide, then one by one.
/// </summary>
internal static unsafe class LinearAttentionSweeps
{
    /// <summary>
    /// Delta rules, before the write: S[r, :] *= factor[r] (when factor is not null), and
    /// retrieved[:] = sum_r phiK[r] S[r, :] over the decayed state.
    /// </summary>
    public static void DecayAndRetrieve(float* s, int dk, int dv, float* factor, float* phiK, float* retrieved)
    {
        var c = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            c = RetrieveColumns<Wide, Vector512<float>>(c, s, dk, dv, factor, phiK, retrieved);
        }
        c = RetrieveColumns<Native, Vector<float>>(c, s, dk, dv, factor, phiK, retrieved);
        for (; c < dv; c++)
        {
            var acc = 0f;
            var p = s + c;
            for (var r = 0; r < dk; r++, p += dv)
            {
                if (factor != null)
                {
                    *p *= factor[r];
                }
                acc = MathF.FusedMultiplyAdd(phiK[r], *p, acc);
            }
            retrieved[c] = acc;
        }
    }

    /// <summary>
    /// S[r, :] = factor[r] S[r, :] + phiK[r] write[:] (no factor when null), then for each of <paramref name="heads"/>
    /// query heads y[h, :] = sum_r phiQ[h, r] S[r, :] over the updated state. phiQ is [heads, d_k], y is [heads, d_v].
    /// </summary>
    public static void WriteAndReadOut(float* s, int dk, int dv, float* factor, float* phiK, float* write,
        float* phiQ, int heads, float* y)
    {
        for (var h0 = 0; h0 < heads; h0 += 4)
        {
            // The first block of heads writes the state; later blocks only read the updated rows.
            var f = h0 == 0 ? factor : null;
            var k = h0 == 0 ? phiK : null;
            var block = Math.Min(4, heads - h0);
            var q = phiQ + (long)h0 * dk;
            var yBlock = y + (long)h0 * dv;
            var c = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                c = ReadOutColumns<Wide, Vector512<float>>(c, s, dk, dv, f, k, write, q, block, yBlock);
            }
            c = ReadOutColumns<Native, Vector<float>>(c, s, dk, dv, f, k, write, q, block, yBlock);
            for (; c < dv; c++)
            {
                ScalarColumn(s + c, dk, dv, f, k, write[c], q, block, yBlock + c);
            }
        }
    }

    private static int RetrieveColumns<L, V>(int c, float* s, int dk, int dv, float* factor, float* phiK, float* retrieved)
        where L : struct, ILanes<V> where V : struct
    {
        var w = L.Count;
        for (; c + 2 * w <= dv; c += 2 * w)
        {
            // Two column vectors at once: two independent FMA chains.
            V r0 = default, r1 = default;
            var p = s + c;
            for (var r = 0; r < dk; r++, p += dv)
            {
                var s0 = L.Load(p);
                var s1 = L.Load(p + w);
                if (factor != null)
                {
                    var f = L.Broadcast(factor[r]);
                    s0 = L.Multiply(s0, f);
                    s1 = L.Multiply(s1, f);
                    L.Store(s0, p);
                    L.Store(s1, p + w);
                }
                var k = L.Broadcast(phiK[r]);
                r0 = L.MultiplyAdd(k, s0, r0);
                r1 = L.MultiplyAdd(k, s1, r1);
            }
            L.Store(r0, retrieved + c);
            L.Store(r1, retrieved + c + w);
        }
        for (; c + w <= dv; c += w)
        {
            V r0 = default;
            var p = s + c;
            for (var r = 0; r < dk; r++, p += dv)
            {
                var s0 = L.Load(p);
                if (factor != null)
                {
                    s0 = L.Multiply(s0, L.Broadcast(factor[r]));
                    L.Store(s0, p);
                }
                r0 = L.MultiplyAdd(L.Broadcast(phiK[r]), s0, r0);
            }
            L.Store(r0, retrieved + c);
        }
        return c;
    }

    private static int ReadOutColumns<L, V>(int c, float* s, int dk, int dv, float* factor, float* phiK, float* write,
        float* q, int heads, float* y)
        where L : struct, ILanes<V> where V : struct
    {
        for (; c + L.Count <= dv; c += L.Count)
        {
            if (heads == 4)
            {
                Tile4<L, V>(s + c, dk, dv, factor, phiK, write + c, q, y + c);
            }
            else
            {
                TileFew<L, V>(s + c, dk, dv, factor, phiK, write + c, q, heads, y + c);
            }
        }
        return c;
    }

    /// <summary>One row's column vector after this token's write (none when phiK is null: the row is already written).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static V Updated<L, V>(float* p, int r, float* factor, float* phiK, V write)
        where L : struct, ILanes<V> where V : struct
    {
        var v = L.Load(p);
        if (phiK == null)
        {
            return v;
        }
        if (factor != null)
        {
            v = L.Multiply(v, L.Broadcast(factor[r]));
        }
        v = L.MultiplyAdd(L.Broadcast(phiK[r]), write, v);
        L.Store(v, p);
        return v;
    }

    private static void Tile4<L, V>(float* s, int dk, int dv, float* factor, float* phiK, float* write, float* q, float* y)
        where L : struct, ILanes<V> where V : struct
    {
        var w = L.Load(write);
        V a0 = default, a1 = default, a2 = default, a3 = default;
        var p = s;
        for (var r = 0; r < dk; r++, p += dv)
        {
            var v = Updated<L, V>(p, r, factor, phiK, w);
            a0 = L.MultiplyAdd(L.Broadcast(q[r]), v, a0);
            a1 = L.MultiplyAdd(L.Broadcast(q[dk + r]), v, a1);
            a2 = L.MultiplyAdd(L.Broadcast(q[2 * dk + r]), v, a2);
            a3 = L.MultiplyAdd(L.Broadcast(q[3 * dk + r]), v, a3);
        }
        L.Store(a0, y);
        L.Store(a1, y + dv);
        L.Store(a2, y + 2 * dv);
        L.Store(a3, y + 3 * dv);
    }

    private static void TileFew<L, V>(float* s, int dk, int dv, float* factor, float* phiK, float* write, float* q, int heads, float* y)
        where L : struct, ILanes<V> where V : struct
    {
        var w = L.Load(write);
        // Two partial sums per head over alternating rows, so one head alone still has two independent FMA chains.
        V a0 = default, a1 = default, a2 = default, b0 = default, b1 = default, b2 = default;
        var p = s;
        var r = 0;
        for (; r + 1 < dk; r += 2, p += 2 * dv)
        {
            var v = Updated<L, V>(p, r, factor, phiK, w);
            var u = Updated<L, V>(p + dv, r + 1, factor, phiK, w);
            a0 = L.MultiplyAdd(L.Broadcast(q[r]), v, a0);
            b0 = L.MultiplyAdd(L.Broadcast(q[r + 1]), u, b0);
            if (heads > 1)
            {
                a1 = L.MultiplyAdd(L.Broadcast(q[dk + r]), v, a1);
                b1 = L.MultiplyAdd(L.Broadcast(q[dk + r + 1]), u, b1);
            }
            if (heads > 2)
            {
                a2 = L.MultiplyAdd(L.Broadcast(q[2 * dk + r]), v, a2);
                b2 = L.MultiplyAdd(L.Broadcast(q[2 * dk + r + 1]), u, b2);
            }
        }
        if (r < dk)
        {
            var v = Updated<L, V>(p, r, factor, phiK, w);
            a0 = L.MultiplyAdd(L.Broadcast(q[r]), v, a0);
            if (heads > 1) a1 = L.MultiplyAdd(L.Broadcast(q[dk + r]), v, a1);
            if (heads > 2) a2 = L.MultiplyAdd(L.Broadcast(q[2 * dk + r]), v, a2);
        }
        L.Store(L.Add(a0, b0), y);
        if (heads > 1) L.Store(L.Add(a1, b1), y + dv);
        if (heads > 2) L.Store(L.Add(a2, b2), y + 2 * dv);
    }

    private static void ScalarColumn(float* s, int dk, int dv, float* factor, float* phiK, float write, float* q, int heads, float* y)
    {
        for (var h = 0; h < heads; h++)
        {
            y[(long)h * dv] = 0f;
        }
        var p = s;
        for (var r = 0; r < dk; r++, p += dv)
        {
            if (phiK != null)
            {
                var v = factor != null ? *p * factor[r] : *p;
                *p = MathF.FusedMultiplyAdd(phiK[r], write, v);
            }
            for (var h = 0; h < heads; h++)
            {
                y[(long)h * dv] = MathF.FusedMultiplyAdd(q[(long)h * dk + r], *p, y[(long)h * dv]);
            }
        }
    }
}
