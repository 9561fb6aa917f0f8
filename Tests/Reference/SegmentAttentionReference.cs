using OnnxAttention.Operators.SegmentAttention;

namespace OnnxAttention.Tests.Reference;

/// <summary>
/// The definition of SegmentAttention, written for clarity in double precision. With L = segment_length and
/// P = past_position, the token at absolute position p lies in segment s(p) = floor(p / L); it sees every position
/// j &lt;= p with s(j) = s(p) - 1 or s(j) = s(p), and y = softmax_j(scale * q.k_j) v_j over that set. Keys and values
/// of positions before P come from the past state (the previous segment's buffer for s(j) = s(P) - 1, the current
/// segment's for s(j) = s(P)), in row j mod L. The present state is built from the same definition at E = P + seq:
/// the memory holds segment s(E) - 1 (zeros when s(E) = 0), the segment buffer positions s(E) * L .. E - 1, other
/// rows zero. The visible set is enumerated per query rather than updated incrementally as the kernel does.
/// Fast kernels are tested against this; it is never used to produce results.
/// </summary>
public static class SegmentAttentionReference
{
    public sealed record Result(double[] Output, double[] MemoryKey, double[] MemoryValue,
        double[] SegmentKey, double[] SegmentValue, long[] Position);

    /// <param name="query">[batch, seq, qHeads * dk]</param>
    /// <param name="key">[batch, seq, kvHeads * dk]</param>
    /// <param name="value">[batch, seq, kvHeads * dv]</param>
    /// <param name="pastMemoryKey">[batch, kvHeads, L, dk], or null with every past input null (start of the sequence)</param>
    /// <param name="pastMemoryValue">[batch, kvHeads, L, dv]</param>
    /// <param name="pastSegmentKey">[batch, kvHeads, L, dk]</param>
    /// <param name="pastSegmentValue">[batch, kvHeads, L, dv]</param>
    /// <param name="pastPosition">[batch]</param>
    public static Result Run(SegmentAttentionAttributes a, int batch, int seq, int dk, int dv,
        float[] query, float[] key, float[] value,
        float[]? pastMemoryKey = null, float[]? pastMemoryValue = null,
        float[]? pastSegmentKey = null, float[]? pastSegmentValue = null, long[]? pastPosition = null)
    {
        int hq = a.Heads.QueryHeads, hkv = a.Heads.KvHeads, group = hq / hkv;
        long l = a.SegmentLength;
        var scale = (double)a.Heads.ScaleFor(dk);
        var y = new double[batch * seq * hq * dv];
        var memoryKey = new double[batch * hkv * l * dk];
        var memoryValue = new double[batch * hkv * l * dv];
        var segmentKey = new double[batch * hkv * l * dk];
        var segmentValue = new double[batch * hkv * l * dv];
        var positions = new long[batch];

        for (var b = 0; b < batch; b++)
            for (var h = 0; h < hkv; h++)
            {
                long past = pastPosition?[b] ?? 0;
                var cache = (b * hkv + h) * l;
                // The key or value of absolute position j, from the new rows or from where the past state keeps it.
                double[] Lookup(long j, float[] x, float[]? pastMemory, float[]? pastSegment, int d)
                {
                    if (j >= past)
                    {
                        return Row(x, ((b * seq + (j - past)) * hkv + h) * d, d);
                    }
                    if (j / l == past / l)
                    {
                        return Row(pastSegment!, (cache + j % l) * d, d);
                    }
                    if (j / l == past / l - 1)
                    {
                        return Row(pastMemory!, (cache + j % l) * d, d);
                    }
                    throw new InvalidOperationException($"position {j} is no longer kept at position {past}");
                }
                double[] K(long j) => Lookup(j, key, pastMemoryKey, pastSegmentKey, dk);
                double[] V(long j) => Lookup(j, value, pastMemoryValue, pastSegmentValue, dv);

                for (var i = 0; i < seq; i++)
                {
                    var p = past + i;
                    var segment = p / l;
                    var visible = new List<long>();
                    for (long j = 0; j <= p; j++)
                    {
                        if (j / l == segment || j / l == segment - 1)
                        {
                            visible.Add(j);
                        }
                    }
                    for (var g = 0; g < group; g++)
                    {
                        var qh = h * group + g;
                        var q = Row(query, ((b * seq + i) * hq + qh) * dk, dk);
                        var scores = visible.Select(j => scale * Dot(q, K(j))).ToArray();
                        var max = scores.Max();
                        var weights = scores.Select(s => Math.Exp(s - max)).ToArray();
                        var total = weights.Sum();
                        var o = new double[dv];
                        for (var n = 0; n < visible.Count; n++)
                        {
                            var v = V(visible[n]);
                            for (var d = 0; d < dv; d++) o[d] += weights[n] / total * v[d];
                        }
                        Array.Copy(o, 0, y, ((b * seq + i) * hq + qh) * dv, dv);
                    }
                }

                var end = past + seq;
                var current = end / l;
                for (var j = Math.Max(0, (current - 1) * l); j < end; j++)
                {
                    var (keys, values) = j / l == current ? (segmentKey, segmentValue) : (memoryKey, memoryValue);
                    Array.Copy(K(j), 0, keys, (cache + j % l) * dk, dk);
                    Array.Copy(V(j), 0, values, (cache + j % l) * dv, dv);
                }
                positions[b] = end;
            }
        return new Result(y, memoryKey, memoryValue, segmentKey, segmentValue, positions);
    }

    private static double Dot(double[] x, double[] y)
    {
        var acc = 0.0;
        for (var i = 0; i < x.Length; i++) acc += x[i] * y[i];
        return acc;
    }

    private static double[] Row(float[] x, long offset, int length)
    {
        var r = new double[length];
        for (var i = 0; i < length; i++) r[i] = x[offset + i];
        return r;
    }
}
