using OnnxAttention.Operators.HybridAttention;

namespace OnnxAttention.Tests.Reference;

/// <summary>
/// The definition of HybridAttention, written for clarity in double precision. For the token at absolute position
/// p (P = past_position, W = window): the window is the positions max(0, p-W+1) .. p, read from the past ring
/// (row pos mod W) or the new rows; the evicted positions are 0 .. p-W, known through the past compressed state
/// plus the positions P-W .. p-W that left the window during this call. With s_j = scale * q.k_j:
/// mean: y = softmax over the window slots and, when n_e = p+1-W > 0, the slot (sum k_e / n_e, sum v_e / n_e).
/// linear: y = (1-g) y_window + g y_lin, g = n_e / (p+1),
/// y_lin = (phi(q) mu_past + sum_e (phi(q).phi(k_e)) v_e) / (phi(q).nu_past + sum_e phi(q).phi(k_e) + eps),
/// phi = elu + 1, computed per evicted token rather than through the kernel's accumulated state.
/// hedgehog: one normaliser for the window and the memory, c the largest window score, a = mix[h], phi the learned maps:
/// y = (sum_win e^(s_j - c) v_j + a (phi(q) mu_past + sum_e (phi(q).phi(k_e)) v_e)) / (sum_win e^(s_j - c) + a (phi(q).nu_past + sum_e phi(q).phi(k_e)) + eps).
/// Fast kernels are tested against this; it is never used to produce results.
/// </summary>
public static class HybridAttentionReference
{
    public sealed record Result(double[] Output, double[] Key, double[] Value, long[] Position,
        double[] CompressedKey, double[] CompressedValue);

    /// <summary>compress=hedgehog's inputs: W_q [Hq, dk, m], b_q [Hq, m], W_k [Hkv, dk, m], b_k [Hkv, m], mix [Hq].</summary>
    public sealed record HedgehogMaps(float[] QueryWeight, float[] QueryBias, float[] KeyWeight, float[] KeyBias, float[] Mix)
    {
        /// <summary>[softmax(u), softmax(-u)], u = x W_h + b_h.</summary>
        public static double[] Phi(float[] weight, float[] bias, int head, int dk, int m, double[] x)
        {
            var u = new double[m];
            for (var j = 0; j < m; j++)
            {
                u[j] = bias[head * m + j];
                for (var i = 0; i < dk; i++) u[j] += x[i] * weight[(head * dk + i) * m + j];
            }
            return [.. SummaryAttentionReference.Softmax(u), .. SummaryAttentionReference.Softmax(u.Select(v => -v).ToArray())];
        }
    }

    /// <param name="query">[batch, seq, qHeads * dk]</param>
    /// <param name="key">[batch, seq, kvHeads * dk]</param>
    /// <param name="value">[batch, seq, kvHeads * dv]</param>
    /// <param name="pastKey">[batch, kvHeads, window, dk], or null with every past input null (start of the sequence)</param>
    /// <param name="pastValue">[batch, kvHeads, window, dv]</param>
    /// <param name="pastPosition">[batch]</param>
    /// <param name="pastCompressedKey">[batch, kvHeads, dk]</param>
    /// <param name="pastCompressedValue">[batch, kvHeads, dk, dv] (linear) or [batch, kvHeads, 1, dv] (mean)</param>
    public static Result Run(HybridAttentionAttributes a, int batch, int seq, int dk, int dv,
        float[] query, float[] key, float[] value,
        float[]? pastKey = null, float[]? pastValue = null, long[]? pastPosition = null,
        float[]? pastCompressedKey = null, float[]? pastCompressedValue = null, HedgehogMaps? maps = null)
    {
        int hq = a.Heads.QueryHeads, hkv = a.Heads.KvHeads, group = hq / hkv, w = a.Window, m = a.Projections;
        var hedgehog = a.Compress == CompressKind.Hedgehog;
        if (hedgehog != maps is not null) throw new ArgumentException("the hedgehog maps go with compress=hedgehog only");
        // The linear memory's bookkeeping is the same for elu + 1 and the learned features; only phi and the mixing differ.
        var linear = a.Compress == CompressKind.Linear || hedgehog;
        var rows = a.CompressedValueRows(dk);
        var features = a.CompressedKeyDim(dk);
        var scale = (double)a.Heads.ScaleFor(dk);
        var y = new double[batch * seq * hq * dv];
        var keyCache = ToDouble(pastKey, batch * hkv * w * dk);
        var valueCache = ToDouble(pastValue, batch * hkv * w * dv);
        var compressedKey = ToDouble(pastCompressedKey, batch * hkv * features);
        var compressedValue = ToDouble(pastCompressedValue, batch * hkv * rows * dv);
        var positions = new long[batch];

        for (var b = 0; b < batch; b++)
            for (var h = 0; h < hkv; h++)
            {
                long past = pastPosition?[b] ?? 0;
                var ringK = keyCache.AsSpan((b * hkv + h) * w * dk, w * dk).ToArray();
                var ringV = valueCache.AsSpan((b * hkv + h) * w * dv, w * dv).ToArray();
                // Absolute position -> key/value: the new rows, or the past ring for the W positions before them.
                var known = Math.Max(0, past - w);
                var keys = new double[past + seq - known][];
                var values = new double[keys.Length][];
                var phiKeys = new double[keys.Length][];
                for (var pos = known; pos < past + seq; pos++)
                {
                    var at = (int)(pos - known);
                    keys[at] = pos >= past
                        ? SummaryAttentionReference.Row(key, (int)(((b * seq + (pos - past)) * hkv + h) * dk), dk)
                        : ringK.AsSpan((int)(pos % w) * dk, dk).ToArray();
                    values[at] = pos >= past
                        ? SummaryAttentionReference.Row(value, (int)(((b * seq + (pos - past)) * hkv + h) * dv), dv)
                        : ringV.AsSpan((int)(pos % w) * dv, dv).ToArray();
                    phiKeys[at] = hedgehog ? HedgehogMaps.Phi(maps!.KeyWeight, maps.KeyBias, h, dk, m, keys[at]) : keys[at].Select(Phi).ToArray();
                }
                double[] K(long pos) => keys[pos - known];
                double[] V(long pos) => values[pos - known];
                double[] PhiK(long pos) => phiKeys[pos - known];
                var nuPast = compressedKey.AsSpan((b * hkv + h) * features, features).ToArray();
                var muPast = compressedValue.AsSpan((b * hkv + h) * rows * dv, rows * dv).ToArray();
                var firstEvictedHere = known;

                for (var i = 0; i < seq; i++)
                {
                    var p = past + i;
                    var windowStart = Math.Max(0, p - w + 1);
                    var evicted = windowStart;
                    for (var g = 0; g < group; g++)
                    {
                        var qh = h * group + g;
                        var q = SummaryAttentionReference.Row(query, ((b * seq + i) * hq + qh) * dk, dk);
                        var slotKeys = new List<double[]>();
                        var slotValues = new List<double[]>();
                        for (var pos = windowStart; pos <= p; pos++)
                        {
                            slotKeys.Add(K(pos));
                            slotValues.Add(V(pos));
                        }
                        if (!linear && evicted > 0)
                        {
                            var kSum = (double[])nuPast.Clone();
                            var vSum = (double[])muPast.Clone();
                            for (var pos = firstEvictedHere; pos < windowStart; pos++)
                            {
                                Accumulate(kSum, K(pos), 1);
                                Accumulate(vSum, V(pos), 1);
                            }
                            slotKeys.Add(kSum.Select(x => x / evicted).ToArray());
                            slotValues.Add(vSum.Select(x => x / evicted).ToArray());
                        }
                        if (hedgehog)
                        {
                            var scores = slotKeys.Select(k => scale * SummaryAttentionReference.Dot(q, k)).ToArray();
                            var c = scores.Max();
                            var phiQ = HedgehogMaps.Phi(maps!.QueryWeight, maps.QueryBias, qh, dk, m, q);
                            double alpha = maps.Mix[qh];
                            var num = new double[dv];
                            var den = a.Epsilon + alpha * SummaryAttentionReference.Dot(phiQ, nuPast);
                            for (var s = 0; s < scores.Length; s++)
                            {
                                Accumulate(num, slotValues[s], Math.Exp(scores[s] - c));
                                den += Math.Exp(scores[s] - c);
                            }
                            for (var r = 0; r < features; r++) Accumulate(num, muPast.AsSpan(r * dv, dv).ToArray(), alpha * phiQ[r]);
                            for (var pos = firstEvictedHere; pos < windowStart; pos++)
                            {
                                var weight = alpha * SummaryAttentionReference.Dot(phiQ, PhiK(pos));
                                Accumulate(num, V(pos), weight);
                                den += weight;
                            }
                            for (var j = 0; j < dv; j++) y[((b * seq + i) * hq + qh) * dv + j] = num[j] / den;
                            continue;
                        }
                        var mix = SummaryAttentionReference.Softmax(slotKeys.Select(k => scale * SummaryAttentionReference.Dot(q, k)).ToArray());
                        var o = new double[dv];
                        for (var s = 0; s < mix.Length; s++) Accumulate(o, slotValues[s], mix[s]);

                        if (linear && evicted > 0)
                        {
                            var phiQ = q.Select(Phi).ToArray();
                            var numerator = new double[dv];
                            for (var r = 0; r < dk; r++) Accumulate(numerator, muPast.AsSpan(r * dv, dv).ToArray(), phiQ[r]);
                            var denominator = SummaryAttentionReference.Dot(phiQ, nuPast) + a.Epsilon;
                            for (var pos = firstEvictedHere; pos < windowStart; pos++)
                            {
                                var weight = SummaryAttentionReference.Dot(phiQ, PhiK(pos));
                                Accumulate(numerator, V(pos), weight);
                                denominator += weight;
                            }
                            var gate = (double)evicted / (p + 1);
                            for (var j = 0; j < dv; j++) o[j] = (1 - gate) * o[j] + gate * numerator[j] / denominator;
                        }
                        Array.Copy(o, 0, y, ((b * seq + i) * hq + qh) * dv, dv);
                    }
                }

                // Present state: the ring after writing every new position, the compressed state over every eviction.
                var end = past + seq;
                var newRingK = (double[])ringK.Clone();
                var newRingV = (double[])ringV.Clone();
                for (var pos = Math.Max(past, end - w); pos < end; pos++)
                {
                    Array.Copy(K(pos), 0, newRingK, (int)(pos % w) * dk, dk);
                    Array.Copy(V(pos), 0, newRingV, (int)(pos % w) * dv, dv);
                }
                var nu = (double[])nuPast.Clone();
                var mu = (double[])muPast.Clone();
                for (var pos = firstEvictedHere; pos < Math.Max(0, end - w); pos++)
                {
                    var k = K(pos);
                    var v = V(pos);
                    if (linear)
                    {
                        var phiK = PhiK(pos);
                        Accumulate(nu, phiK, 1);
                        for (var r = 0; r < features; r++)
                            for (var j = 0; j < dv; j++)
                                mu[r * dv + j] += phiK[r] * v[j];
                    }
                    else
                    {
                        Accumulate(nu, k, 1);
                        Accumulate(mu, v, 1);
                    }
                }
                Array.Copy(newRingK, 0, keyCache, (b * hkv + h) * w * dk, w * dk);
                Array.Copy(newRingV, 0, valueCache, (b * hkv + h) * w * dv, w * dv);
                Array.Copy(nu, 0, compressedKey, (b * hkv + h) * features, features);
                Array.Copy(mu, 0, compressedValue, (b * hkv + h) * rows * dv, rows * dv);
                positions[b] = end;
            }
        return new Result(y, keyCache, valueCache, positions, compressedKey, compressedValue);
    }

    /// <summary>elu(x) + 1.</summary>
    public static double Phi(double x) => x > 0 ? x + 1 : Math.Exp(x);

    private static void Accumulate(double[] sum, double[] x, double weight)
    {
        for (var j = 0; j < sum.Length; j++) sum[j] += weight * x[j];
    }

    private static double[] ToDouble(float[]? x, int length)
    {
        var r = new double[length];
        if (x != null)
        {
            for (var i = 0; i < length; i++) r[i] = x[i];
        }
        return r;
    }
}
