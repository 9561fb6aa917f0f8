using OnnxAttention.Operators.SummaryAttention;

namespace OnnxAttention.Tests.Reference;

/// <summary>
/// The definition of SummaryAttention, written for clarity in double precision. Summaries are computed from
/// their closed forms, not from the kernel's recurrences: at absolute position p (n = p + 1 tokens seen)
/// cumulative: kbar = (sum of every key so far) / n; moving: kbar = mean of the keys at positions
/// max(0, n-M) .. p; ema: kbar_s = e_s / (1 - a_s^n) with e_s = a_s^(n-P) e_s(P) + (1-a_s) sum_{P &lt;= j &lt;= p} a_s^(p-j) k_j,
/// e_s(P) the given uncorrected EMA after P tokens. The same for values. The query head h (KV head h / group)
/// reads y = sum_j softmax_j(scale * q.kslot_j) vslot_j over the slots (kbar_s, vbar_s) and (k_p, v_p).
/// Fast kernels are tested against this; it is never used to produce results.
/// </summary>
public static class SummaryAttentionReference
{
    public sealed record Result(double[] Output, double[] KeySummary, double[] ValueSummary, long[] Count,
        double[] KeyWindow, double[] ValueWindow);

    /// <param name="query">[batch, seq, qHeads * dk]</param>
    /// <param name="key">[batch, seq, kvHeads * dk]</param>
    /// <param name="value">[batch, seq, kvHeads * dv]</param>
    /// <param name="pastKeySummary">[batch, kvHeads, slots, dk], or null with every past input null (start of the sequence)</param>
    /// <param name="pastValueSummary">[batch, kvHeads, slots, dv]</param>
    /// <param name="pastCount">[batch]</param>
    /// <param name="pastKeyWindow">[batch, kvHeads, window, dk] (moving only)</param>
    /// <param name="pastValueWindow">[batch, kvHeads, window, dv] (moving only)</param>
    public static Result Run(SummaryAttentionAttributes a, int batch, int seq, int dk, int dv,
        float[] query, float[] key, float[] value,
        float[]? pastKeySummary = null, float[]? pastValueSummary = null, long[]? pastCount = null,
        float[]? pastKeyWindow = null, float[]? pastValueWindow = null)
    {
        int hq = a.Heads.QueryHeads, hkv = a.Heads.KvHeads, group = hq / hkv, slots = a.SummaryRows, m = a.WindowRows;
        var scale = (double)a.Heads.ScaleFor(dk);
        var y = new double[batch * seq * hq * dv];
        var keySummary = ToDouble(pastKeySummary, batch * hkv * slots * dk);
        var valueSummary = ToDouble(pastValueSummary, batch * hkv * slots * dv);
        var keyWindow = ToDouble(pastKeyWindow, batch * hkv * m * dk);
        var valueWindow = ToDouble(pastValueWindow, batch * hkv * m * dv);
        var count = new long[batch];

        for (var b = 0; b < batch; b++)
            for (var h = 0; h < hkv; h++)
            {
                long past = pastCount?[b] ?? 0;
                // Row r of the head's input keys is the token at absolute position past + r.
                var keyRows = Enumerable.Range(0, seq).Select(r => Row(key, ((b * seq + r) * hkv + h) * dk, dk)).ToArray();
                var valueRows = Enumerable.Range(0, seq).Select(r => Row(value, ((b * seq + r) * hkv + h) * dv, dv)).ToArray();
                double[] K(int r) => keyRows[r];
                double[] V(int r) => valueRows[r];
                var pastKeySums = Slice(keySummary, (b * hkv + h) * slots * dk, slots * dk);
                var pastValueSums = Slice(valueSummary, (b * hkv + h) * slots * dv, slots * dv);
                var keyRing = Slice(keyWindow, (b * hkv + h) * m * dk, m * dk);
                var valueRing = Slice(valueWindow, (b * hkv + h) * m * dv, m * dv);
                var pastKeyRing = (double[])keyRing.Clone();
                var pastValueRing = (double[])valueRing.Clone();

                for (var i = 0; i < seq; i++)
                {
                    var p = past + i;
                    var n = p + 1;
                    var keys = new double[slots][];
                    var values = new double[slots][];
                    for (var s = 0; s < slots; s++)
                    {
                        (keys[s], values[s]) = a.Kind switch
                        {
                            SummaryKind.Cumulative => (Cumulative(pastKeySums, K, i, n), Cumulative(pastValueSums, V, i, n)),
                            SummaryKind.Moving => (Moving(pastKeyRing, K, past, p, m, dk), Moving(pastValueRing, V, past, p, m, dv)),
                            SummaryKind.Ema => (Ema(pastKeySums, s, K, past, p, SlotAlpha(a, s), dk, corrected: true),
                                Ema(pastValueSums, s, V, past, p, SlotAlpha(a, s), dv, corrected: true)),
                            _ => throw new ArgumentOutOfRangeException(nameof(a)),
                        };
                    }
                    for (var g = 0; g < group; g++)
                    {
                        var qh = h * group + g;
                        var q = Row(query, ((b * seq + i) * hq + qh) * dk, dk);
                        var slotKeys = keys.Append(K(i)).ToArray();
                        var slotValues = values.Append(V(i)).ToArray();
                        var mix = Softmax(slotKeys.Select(k => scale * Dot(q, k)).ToArray());
                        for (var j = 0; j < dv; j++)
                        {
                            var acc = 0.0;
                            for (var s = 0; s < mix.Length; s++) acc += mix[s] * slotValues[s][j];
                            y[((b * seq + i) * hq + qh) * dv + j] = acc;
                        }
                    }
                    if (m > 0)
                    {
                        Array.Copy(K(i), 0, keyRing, (int)(p % m) * dk, dk);
                        Array.Copy(V(i), 0, valueRing, (int)(p % m) * dv, dv);
                    }
                }

                // The present summaries, by definition (uncorrected sums / EMAs after past + seq tokens).
                var end = past + seq;
                for (var s = 0; s < slots; s++)
                {
                    double[] kNum, vNum;
                    switch (a.Kind)
                    {
                        case SummaryKind.Cumulative:
                            kNum = Cumulative(pastKeySums, K, seq - 1, 1);
                            vNum = Cumulative(pastValueSums, V, seq - 1, 1);
                            break;
                        case SummaryKind.Moving:
                            var inWindow = Math.Min(end, m);
                            kNum = Moving(pastKeyRing, K, past, end - 1, m, dk).Select(x => x * inWindow).ToArray();
                            vNum = Moving(pastValueRing, V, past, end - 1, m, dv).Select(x => x * inWindow).ToArray();
                            break;
                        default:
                            kNum = Ema(pastKeySums, s, K, past, end - 1, SlotAlpha(a, s), dk, corrected: false);
                            vNum = Ema(pastValueSums, s, V, past, end - 1, SlotAlpha(a, s), dv, corrected: false);
                            break;
                    }
                    if (seq == 0 && a.Kind != SummaryKind.Ema)
                    {
                        // Nothing absorbed: the state passes through.
                        kNum = pastKeySums.AsSpan(s * dk, dk).ToArray();
                        vNum = pastValueSums.AsSpan(s * dv, dv).ToArray();
                    }
                    Array.Copy(kNum, 0, keySummary, ((b * hkv + h) * slots + s) * dk, dk);
                    Array.Copy(vNum, 0, valueSummary, ((b * hkv + h) * slots + s) * dv, dv);
                }
                Array.Copy(keyRing, 0, keyWindow, (b * hkv + h) * m * dk, m * dk);
                Array.Copy(valueRing, 0, valueWindow, (b * hkv + h) * m * dv, m * dv);
                count[b] = end;
            }
        return new Result(y, keySummary, valueSummary, count, keyWindow, valueWindow);
    }

    /// <summary>The EMA decay of slot s exactly as the kernel uses it: alpha^(2^-s) rounded to float32.</summary>
    public static double SlotAlpha(SummaryAttentionAttributes a, int slot) => (float)a.SlotAlpha(slot);

    /// <summary>(past sum + the new rows 0..last) / n.</summary>
    private static double[] Cumulative(double[] pastSums, Func<int, double[]> row, int last, long n)
    {
        var d = pastSums.Length;
        var sum = (double[])pastSums.Clone();
        for (var r = 0; r <= last; r++)
        {
            var x = row(r);
            for (var j = 0; j < d; j++) sum[j] += x[j];
        }
        return sum.Select(x => x / n).ToArray();
    }

    /// <summary>The mean of the tokens at positions max(0, p+1-m) .. p, from the past ring or the new rows.</summary>
    private static double[] Moving(double[] pastRing, Func<int, double[]> row, long past, long p, int m, int d)
    {
        var sum = new double[d];
        var first = Math.Max(0, p + 1 - m);
        for (var pos = first; pos <= p; pos++)
        {
            var x = pos >= past ? row((int)(pos - past)) : pastRing.AsSpan((int)(pos % m) * d, d).ToArray();
            for (var j = 0; j < d; j++) sum[j] += x[j];
        }
        return sum.Select(x => x / (p + 1 - first)).ToArray();
    }

    /// <summary>a^(p+1-past) e(past) + (1-a) sum_{past &lt;= j &lt;= p} a^(p-j) x_j, divided by 1 - a^(p+1) when corrected.</summary>
    private static double[] Ema(double[] pastEmas, int slot, Func<int, double[]> row, long past, long p, double alpha, int d, bool corrected)
    {
        var e = new double[d];
        for (var j = 0; j < d; j++) e[j] = Math.Pow(alpha, p + 1 - past) * pastEmas[slot * d + j];
        for (var pos = past; pos <= p; pos++)
        {
            var x = row((int)(pos - past));
            var w = (1 - alpha) * Math.Pow(alpha, p - pos);
            for (var j = 0; j < d; j++) e[j] += w * x[j];
        }
        if (corrected)
        {
            var weight = 1 - Math.Pow(alpha, p + 1);
            for (var j = 0; j < d; j++) e[j] /= weight;
        }
        return e;
    }

    internal static double[] Softmax(double[] scores)
    {
        var max = scores.Max();
        var e = scores.Select(s => Math.Exp(s - max)).ToArray();
        var total = e.Sum();
        return e.Select(x => x / total).ToArray();
    }

    internal static double Dot(double[] x, double[] y)
    {
        var acc = 0.0;
        for (var i = 0; i < x.Length; i++) acc += x[i] * y[i];
        return acc;
    }

    internal static double[] Row(float[] x, int offset, int length)
    {
        var r = new double[length];
        for (var i = 0; i < length; i++) r[i] = x[offset + i];
        return r;
    }

    private static double[] Slice(double[] x, int offset, int length) => x.AsSpan(offset, length).ToArray();

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
