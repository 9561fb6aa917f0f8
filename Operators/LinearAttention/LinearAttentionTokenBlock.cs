using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using OnnxAttention.Operators.Simd;

namespace OnnxAttention.Operators.LinearAttention;

/// <summary>
/// Prefill for the rules without a retrieval (linear and gated): <see cref="Tokens"/> consecutive tokens per pass over
/// one head's state S [d_k x d_v]. Each state row is loaded once, takes the four tokens' decays and writes in
/// registers, one after the other, and after each token's write feeds that token's read-outs; then it is stored once.
/// So every token sees exactly the state the token-by-token recurrence gives it, with the same fused operations in
/// the same order per element (only the read-out's summation order over rows differs), while the state moves through
/// the cache a quarter as often and each broadcast row value serves a whole strip of columns. The per-token pass is
/// bound by loading and storing the state; this one by the FMA units.
/// <para>
/// The per-row values of the four tokens are interleaved so one pointer walks them: phiK and factor as [d_k, 4],
/// phiQ as [d_k, 4, heads]. Up to four query heads per KV head (their read-outs live in registers with the state).
/// </para>
/// <para>
/// The kernels are compiled fully optimised from their first call: unoptimised (tier 0) code of these generic vector
/// bodies is tens of times slower, and a prefill is a single long call that tiering would not replace in time.
/// </para>
/// </summary>
internal static unsafe class LinearAttentionTokenBlock
{
    public const int Tokens = 4;

    /// <summary>The most query heads per KV head one pass reads out (16 accumulators at one vector per strip).</summary>
    public const int MaxHeads = 4;

    /// <summary>
    /// For t = 0..3 in order: S[r, :] = factor[r, t] S[r, :] + phiK[r, t] v_t[:] (no factor when null), then
    /// y_t[h, :] = sum_r phiQ[r, t, h] S[r, :]. v_t = v + t * vStride; y_t[h] = y + t * yStride + h * dv.
    /// </summary>
    public static void WriteAndReadOut(float* s, int dk, int dv, float* factor, float* phiK, float* v, long vStride,
        float* phiQ, int heads, float* y, long yStride)
    {
        var a = new Args(s, dk, dv, factor, phiK, v, vStride, phiQ, y, yStride);
        var gated = factor != null;
        switch (heads, gated)
        {
            case (1, false): Sweep<One, No>(a); break;
            case (1, true): Sweep<One, Yes>(a); break;
            case (2, false): Sweep<Two, No>(a); break;
            case (2, true): Sweep<Two, Yes>(a); break;
            case (3, false): Sweep<Three, No>(a); break;
            case (3, true): Sweep<Three, Yes>(a); break;
            case (4, false): Sweep<Four, No>(a); break;
            case (4, true): Sweep<Four, Yes>(a); break;
            default: throw new ArgumentOutOfRangeException(nameof(heads), heads, "one pass reads out 1 to 4 query heads");
        }
    }

    private readonly struct Args(float* s, int dk, int dv, float* factor, float* phiK, float* v, long vStride, float* phiQ, float* y, long yStride)
    {
        public readonly float* S = s, Factor = factor, K = phiK, V = v, Q = phiQ, Y = y;
        public readonly int Dk = dk, Dv = dv;
        public readonly long VStride = vStride, YStride = yStride;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Sweep<H, G>(in Args a) where H : struct, IConstant where G : struct, IFlag
    {
        var c = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            // Two vectors per strip halve the broadcasts per FMA; the accumulators fit for up to two heads.
            if (H.Value <= 2)
            {
                c = DoubleStrips<Wide, Vector512<float>, H, G>(c, a);
            }
            c = Strips<Wide, Vector512<float>, H, G>(c, a);
        }
        c = Strips<Native, System.Numerics.Vector<float>, H, G>(c, a);
        Strips<Scalar, float, H, G>(c, a);
    }

    /// <summary>Columns [c, ...) in strips of one vector; returns the first column left over.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Strips<L, V, H, G>(int c, in Args a)
        where L : struct, ILanes<V> where V : struct where H : struct, IConstant where G : struct, IFlag
    {
        int dk = a.Dk, dv = a.Dv, hs = H.Value;
        for (; c + L.Count <= dv; c += L.Count)
        {
            var w0 = L.Load(a.V + c);
            var w1 = L.Load(a.V + a.VStride + c);
            var w2 = L.Load(a.V + 2 * a.VStride + c);
            var w3 = L.Load(a.V + 3 * a.VStride + c);
            // a<token><head>
            V a00 = default, a01 = default, a02 = default, a03 = default;
            V a10 = default, a11 = default, a12 = default, a13 = default;
            V a20 = default, a21 = default, a22 = default, a23 = default;
            V a30 = default, a31 = default, a32 = default, a33 = default;
            var p = a.S + c;
            float* k = a.K, f = a.Factor, q = a.Q;
            for (var r = 0; r < dk; r++, p += dv, k += Tokens, f += Tokens, q += Tokens * hs)
            {
                var x = L.Load(p);

                if (G.On) x = L.Multiply(x, L.Broadcast(f[0]));
                x = L.MultiplyAdd(L.Broadcast(k[0]), w0, x);
                a00 = L.MultiplyAdd(L.Broadcast(q[0]), x, a00);
                if (hs > 1) a01 = L.MultiplyAdd(L.Broadcast(q[1]), x, a01);
                if (hs > 2) a02 = L.MultiplyAdd(L.Broadcast(q[2]), x, a02);
                if (hs > 3) a03 = L.MultiplyAdd(L.Broadcast(q[3]), x, a03);

                if (G.On) x = L.Multiply(x, L.Broadcast(f[1]));
                x = L.MultiplyAdd(L.Broadcast(k[1]), w1, x);
                a10 = L.MultiplyAdd(L.Broadcast(q[hs]), x, a10);
                if (hs > 1) a11 = L.MultiplyAdd(L.Broadcast(q[hs + 1]), x, a11);
                if (hs > 2) a12 = L.MultiplyAdd(L.Broadcast(q[hs + 2]), x, a12);
                if (hs > 3) a13 = L.MultiplyAdd(L.Broadcast(q[hs + 3]), x, a13);

                if (G.On) x = L.Multiply(x, L.Broadcast(f[2]));
                x = L.MultiplyAdd(L.Broadcast(k[2]), w2, x);
                a20 = L.MultiplyAdd(L.Broadcast(q[2 * hs]), x, a20);
                if (hs > 1) a21 = L.MultiplyAdd(L.Broadcast(q[2 * hs + 1]), x, a21);
                if (hs > 2) a22 = L.MultiplyAdd(L.Broadcast(q[2 * hs + 2]), x, a22);
                if (hs > 3) a23 = L.MultiplyAdd(L.Broadcast(q[2 * hs + 3]), x, a23);

                if (G.On) x = L.Multiply(x, L.Broadcast(f[3]));
                x = L.MultiplyAdd(L.Broadcast(k[3]), w3, x);
                a30 = L.MultiplyAdd(L.Broadcast(q[3 * hs]), x, a30);
                if (hs > 1) a31 = L.MultiplyAdd(L.Broadcast(q[3 * hs + 1]), x, a31);
                if (hs > 2) a32 = L.MultiplyAdd(L.Broadcast(q[3 * hs + 2]), x, a32);
                if (hs > 3) a33 = L.MultiplyAdd(L.Broadcast(q[3 * hs + 3]), x, a33);

                L.Store(x, p);
            }
            StoreToken<L, V, H>(a.Y + c, dv, a00, a01, a02, a03);
            StoreToken<L, V, H>(a.Y + a.YStride + c, dv, a10, a11, a12, a13);
            StoreToken<L, V, H>(a.Y + 2 * a.YStride + c, dv, a20, a21, a22, a23);
            StoreToken<L, V, H>(a.Y + 3 * a.YStride + c, dv, a30, a31, a32, a33);
        }
        return c;
    }

    /// <summary>Columns [c, ...) in strips of two vectors, for one or two heads; returns the first column left over.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int DoubleStrips<L, V, H, G>(int c, in Args a)
        where L : struct, ILanes<V> where V : struct where H : struct, IConstant where G : struct, IFlag
    {
        int dk = a.Dk, dv = a.Dv, hs = H.Value, n = L.Count;
        for (; c + 2 * n <= dv; c += 2 * n)
        {
            var w0 = L.Load(a.V + c);
            var w1 = L.Load(a.V + a.VStride + c);
            var w2 = L.Load(a.V + 2 * a.VStride + c);
            var w3 = L.Load(a.V + 3 * a.VStride + c);
            var u0 = L.Load(a.V + c + n);
            var u1 = L.Load(a.V + a.VStride + c + n);
            var u2 = L.Load(a.V + 2 * a.VStride + c + n);
            var u3 = L.Load(a.V + 3 * a.VStride + c + n);
            // a<token><head> for the first vector, b<token><head> for the second
            V a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default, a30 = default, a31 = default;
            V b00 = default, b01 = default, b10 = default, b11 = default, b20 = default, b21 = default, b30 = default, b31 = default;
            var p = a.S + c;
            float* k = a.K, f = a.Factor, q = a.Q;
            for (var r = 0; r < dk; r++, p += dv, k += Tokens, f += Tokens, q += Tokens * hs)
            {
                var x = L.Load(p);
                var z = L.Load(p + n);

                if (G.On) { var g = L.Broadcast(f[0]); x = L.Multiply(x, g); z = L.Multiply(z, g); }
                var kb = L.Broadcast(k[0]);
                x = L.MultiplyAdd(kb, w0, x);
                z = L.MultiplyAdd(kb, u0, z);
                var qb = L.Broadcast(q[0]);
                a00 = L.MultiplyAdd(qb, x, a00);
                b00 = L.MultiplyAdd(qb, z, b00);
                if (hs > 1) { qb = L.Broadcast(q[1]); a01 = L.MultiplyAdd(qb, x, a01); b01 = L.MultiplyAdd(qb, z, b01); }

                if (G.On) { var g = L.Broadcast(f[1]); x = L.Multiply(x, g); z = L.Multiply(z, g); }
                kb = L.Broadcast(k[1]);
                x = L.MultiplyAdd(kb, w1, x);
                z = L.MultiplyAdd(kb, u1, z);
                qb = L.Broadcast(q[hs]);
                a10 = L.MultiplyAdd(qb, x, a10);
                b10 = L.MultiplyAdd(qb, z, b10);
                if (hs > 1) { qb = L.Broadcast(q[hs + 1]); a11 = L.MultiplyAdd(qb, x, a11); b11 = L.MultiplyAdd(qb, z, b11); }

                if (G.On) { var g = L.Broadcast(f[2]); x = L.Multiply(x, g); z = L.Multiply(z, g); }
                kb = L.Broadcast(k[2]);
                x = L.MultiplyAdd(kb, w2, x);
                z = L.MultiplyAdd(kb, u2, z);
                qb = L.Broadcast(q[2 * hs]);
                a20 = L.MultiplyAdd(qb, x, a20);
                b20 = L.MultiplyAdd(qb, z, b20);
                if (hs > 1) { qb = L.Broadcast(q[2 * hs + 1]); a21 = L.MultiplyAdd(qb, x, a21); b21 = L.MultiplyAdd(qb, z, b21); }

                if (G.On) { var g = L.Broadcast(f[3]); x = L.Multiply(x, g); z = L.Multiply(z, g); }
                kb = L.Broadcast(k[3]);
                x = L.MultiplyAdd(kb, w3, x);
                z = L.MultiplyAdd(kb, u3, z);
                qb = L.Broadcast(q[3 * hs]);
                a30 = L.MultiplyAdd(qb, x, a30);
                b30 = L.MultiplyAdd(qb, z, b30);
                if (hs > 1) { qb = L.Broadcast(q[3 * hs + 1]); a31 = L.MultiplyAdd(qb, x, a31); b31 = L.MultiplyAdd(qb, z, b31); }

                L.Store(x, p);
                L.Store(z, p + n);
            }
            StoreToken<L, V, H>(a.Y + c, dv, a00, a01, default, default);
            StoreToken<L, V, H>(a.Y + c + n, dv, b00, b01, default, default);
            StoreToken<L, V, H>(a.Y + a.YStride + c, dv, a10, a11, default, default);
            StoreToken<L, V, H>(a.Y + a.YStride + c + n, dv, b10, b11, default, default);
            StoreToken<L, V, H>(a.Y + 2 * a.YStride + c, dv, a20, a21, default, default);
            StoreToken<L, V, H>(a.Y + 2 * a.YStride + c + n, dv, b20, b21, default, default);
            StoreToken<L, V, H>(a.Y + 3 * a.YStride + c, dv, a30, a31, default, default);
            StoreToken<L, V, H>(a.Y + 3 * a.YStride + c + n, dv, b30, b31, default, default);
        }
        return c;
    }

    private static void StoreToken<L, V, H>(float* y, int dv, V h0, V h1, V h2, V h3)
        where L : struct, ILanes<V> where V : struct where H : struct, IConstant
    {
        L.Store(h0, y);
        if (H.Value > 1) L.Store(h1, y + dv);
        if (H.Value > 2) L.Store(h2, y + 2 * dv);
        if (H.Value > 3) L.Store(h3, y + 3 * dv);
    }
}
