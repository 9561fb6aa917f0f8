using OnnxAttention.Operators.WindowAttention;

namespace OnnxAttention.Tests.Reference;

/// <summary>
/// The definition of WindowAttention, written for clarity in double precision. For the query at absolute position
/// p (P = past_position, W = window, S = sinks) the attended positions are the set
/// { j : max(0, p-W+1) &lt;= j &lt;= p } united with { j : 0 &lt;= j &lt; min(S, p+1) } (each position once), and
/// y = sum_j softmax_j(c(scale * q.k_j)) v_j with c(s) = softcap * tanh(s / softcap), or c(s) = s when softcap is 0.
/// Keys and values of positions before P come from the past cache (sink row j for j &lt; S, else ring row
/// S + j mod W); positions from P on come from this call's inputs. Fast kernels are tested against this; it is
/// never used to produce results.
/// </summary>
public static class WindowAttentionReference
{
    /// <param name="Position">One entry per entry of past_position ([batch], or [1] when it was given as [1]).</param>
    public sealed record Result(double[] Output, double[] KeyCache, double[] ValueCache, long[] Position);

    /// <param name="query">[batch, seq, qHeads * dk]</param>
    /// <param name="key">[batch, seq, kvHeads * dk]</param>
    /// <param name="value">[batch, seq, kvHeads * dv]</param>
    /// <param name="pastKeyCache">[batch, kvHeads, sinks + window, dk], or null with every past input null (start of the sequence)</param>
    /// <param name="pastValueCache">[batch, kvHeads, sinks + window, dv]</param>
    /// <param name="pastPosition">[batch], or [1] for one position shared by every row</param>
    public static Result Run(WindowAttentionAttributes a, int batch, int seq, int dk, int dv,
        float[] query, float[] key, float[] value,
        float[]? pastKeyCache = null, float[]? pastValueCache = null, long[]? pastPosition = null)
    {
        int hq = a.Heads.QueryHeads, hkv = a.Heads.KvHeads, group = hq / hkv, w = a.Window, sinks = a.Sinks, rows = sinks + w;
        var scale = (double)a.Heads.ScaleFor(dk);
        var y = new double[batch * seq * hq * dv];
        var keyCache = ToDouble(pastKeyCache, batch * hkv * rows * dk);
        var valueCache = ToDouble(pastValueCache, batch * hkv * rows * dv);
        long PastOf(int b) => pastPosition == null ? 0 : pastPosition[pastPosition.Length == 1 ? 0 : b];

        for (var b = 0; b < batch; b++)
            for (var h = 0; h < hkv; h++)
            {
                var past = PastOf(b);
                var cacheK = keyCache.AsSpan((b * hkv + h) * rows * dk, rows * dk);
                var cacheV = valueCache.AsSpan((b * hkv + h) * rows * dv, rows * dv);
                // Absolute position -> key/value, for every position this call can see.
                var keys = new Dictionary<long, double[]>();
                var values = new Dictionary<long, double[]>();
                for (long pos = 0; pos < Math.Min(sinks, past); pos++)
                {
                    keys[pos] = cacheK.Slice((int)pos * dk, dk).ToArray();
                    values[pos] = cacheV.Slice((int)pos * dv, dv).ToArray();
                }
                for (var pos = Math.Max(0, past - w); pos < past; pos++)
                {
                    var ring = sinks + (int)(pos % w);
                    keys[pos] = cacheK.Slice(ring * dk, dk).ToArray();
                    values[pos] = cacheV.Slice(ring * dv, dv).ToArray();
                }
                for (var i = 0; i < seq; i++)
                {
                    keys[past + i] = SummaryAttentionReference.Row(key, ((b * seq + i) * hkv + h) * dk, dk);
                    values[past + i] = SummaryAttentionReference.Row(value, ((b * seq + i) * hkv + h) * dv, dv);
                }

                for (var i = 0; i < seq; i++)
                {
                    var p = past + i;
                    var attended = new SortedSet<long>();
                    for (long j = 0; j < Math.Min(sinks, p + 1); j++) attended.Add(j);
                    for (var j = Math.Max(0, p - w + 1); j <= p; j++) attended.Add(j);
                    for (var g = 0; g < group; g++)
                    {
                        var qh = h * group + g;
                        var q = SummaryAttentionReference.Row(query, ((b * seq + i) * hq + qh) * dk, dk);
                        var scores = attended.Select(j => Cap(a.Softcap, scale * SummaryAttentionReference.Dot(q, keys[j]))).ToArray();
                        var mix = SummaryAttentionReference.Softmax(scores);
                        var s = 0;
                        foreach (var j in attended)
                        {
                            var vj = values[j];
                            for (var d = 0; d < dv; d++) y[((b * seq + i) * hq + qh) * dv + d] += mix[s] * vj[d];
                            s++;
                        }
                    }
                }

                // Present cache: rows this call did not write keep their past contents.
                var end = past + seq;
                for (var pos = past; pos < end; pos++)
                {
                    if (pos < sinks)
                    {
                        keys[pos].CopyTo(cacheK.Slice((int)pos * dk, dk));
                        values[pos].CopyTo(cacheV.Slice((int)pos * dv, dv));
                    }
                    if (pos >= end - w)
                    {
                        var ring = sinks + (int)(pos % w);
                        keys[pos].CopyTo(cacheK.Slice(ring * dk, dk));
                        values[pos].CopyTo(cacheV.Slice(ring * dv, dv));
                    }
                }
            }
        var positions = pastPosition == null
            ? new long[batch].Select(_ => (long)seq).ToArray()
            : pastPosition.Select(p => p + seq).ToArray();
        return new Result(y, keyCache, valueCache, positions);
    }

    /// <summary>The softcap c * tanh(s / c); c = 0 leaves the score alone.</summary>
    public static double Cap(float softcap, double score) => softcap > 0 ? softcap * Math.Tanh(score / softcap) : score;

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
