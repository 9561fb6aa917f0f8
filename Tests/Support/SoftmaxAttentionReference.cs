namespace OnnxAttention.Tests.Support;

/// <summary>
/// Naive double-precision softmax attention, straight from the maths, on [batch, heads, seq, dim] tensors:
/// s_ij = softcap(scale * q_i . k_j) + mask_ij, with keys j > i + (kv_len - q_len) removed when causal (the query
/// chunk is the last q_len positions of the kv_len keys), y_i = sum_j softmax_j(s_ij) v_j. Query head h reads KV
/// head h / (q_heads / kv_heads). softcap(x) = c * tanh(x / c) when c > 0.
/// </summary>
public static class SoftmaxAttentionReference
{
    public sealed record Sizes(int Batch, int QHeads, int KvHeads, int QLen, int KvLen, int HeadDim, int VHeadDim);

    /// <param name="mask">Additive mask [q_len, kv_len] shared by every batch row and head, or null.</param>
    public static double[] Compute(float[] q, float[] k, float[] v, Sizes n, double scale, bool causal, double softcap = 0, float[]? mask = null)
    {
        var y = new double[n.Batch * n.QHeads * n.QLen * n.VHeadDim];
        var group = n.QHeads / n.KvHeads;
        var scores = new double[n.KvLen];
        for (var b = 0; b < n.Batch; b++)
        {
            for (var h = 0; h < n.QHeads; h++)
            {
                var kvh = h / group;
                for (var i = 0; i < n.QLen; i++)
                {
                    var max = double.NegativeInfinity;
                    for (var j = 0; j < n.KvLen; j++)
                    {
                        if (causal && j > i + (n.KvLen - n.QLen))
                        {
                            scores[j] = double.NegativeInfinity;
                            continue;
                        }
                        var dot = 0.0;
                        for (var d = 0; d < n.HeadDim; d++)
                        {
                            dot += (double)q[((b * n.QHeads + h) * n.QLen + i) * n.HeadDim + d] * k[((b * n.KvHeads + kvh) * n.KvLen + j) * n.HeadDim + d];
                        }
                        var s = dot * scale;
                        if (softcap > 0) s = softcap * Math.Tanh(s / softcap);
                        if (mask is not null) s += mask[i * n.KvLen + j];
                        scores[j] = s;
                        max = Math.Max(max, s);
                    }
                    var sum = 0.0;
                    for (var j = 0; j < n.KvLen; j++)
                    {
                        scores[j] = double.IsNegativeInfinity(scores[j]) ? 0 : Math.Exp(scores[j] - max);
                        sum += scores[j];
                    }
                    var row = ((b * n.QHeads + h) * n.QLen + i) * n.VHeadDim;
                    for (var j = 0; j < n.KvLen; j++)
                    {
                        var p = scores[j] / sum;
                        for (var d = 0; d < n.VHeadDim; d++)
                        {
                            y[row + d] += p * v[((b * n.KvHeads + kvh) * n.KvLen + j) * n.VHeadDim + d];
                        }
                    }
                }
            }
        }
        return y;
    }
}
