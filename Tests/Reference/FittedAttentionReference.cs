using OnnxAttention.Host.Quality;

namespace OnnxAttention.Tests.Reference;

/// <summary>
/// The replacement attention transfer fits, written for clarity in double precision, query by query over all keys
/// (no running sums). Hedgehog features phi_h(x) = [softmax(x W_h + b_h), softmax(-(x W_h + b_h))]; parameters laid
/// out as W_q [Hq, d, m], b_q [Hq, m], W_k [Hkv, d, m], b_k [Hkv, m], mix [Hq]. For query t of head h (KV head g):
/// W = 0: y = sum_{j&lt;=t} (phi_q(q_t).phi_k(k_j)) v_j / (sum_{j&lt;=t} phi_q(q_t).phi_k(k_j) + eps);
/// W &gt; 0: y = (sum_{t-W&lt;j&lt;=t} e^(s_j - c) v_j + a sum_{j&lt;=t-W} (phi_q.phi_k) v_j) / (sum e^(s_j - c) + a sum phi_q.phi_k + eps),
/// s_j = scale q_t.k_j, c the window's largest s_j, a = exp(mix_h).
/// </summary>
public static class FittedAttentionReference
{
    public const double Epsilon = 1e-6;

    public static double[] Phi(double[] p, int weight, int bias, int head, int d, int m, ReadOnlySpan<float> x)
    {
        var u = new double[m];
        for (var j = 0; j < m; j++)
        {
            u[j] = p[bias + head * m + j];
            for (var i = 0; i < d; i++) u[j] += x[i] * p[weight + (head * d + i) * m + j];
        }
        return [.. SummaryAttentionReference.Softmax(u), .. SummaryAttentionReference.Softmax(u.Select(v => -v).ToArray())];
    }

    /// <summary>The replacement's output [rows, Hq, T, dv].</summary>
    public static double[] Outputs(LayerAttention L, int m, int window, double[] p)
    {
        int hq = L.QueryHeads, hkv = L.KvHeads, d = L.HeadDim, dv = L.ValueHeadDim, T = L.Length;
        int wq = 0, bq = wq + hq * d * m, wk = bq + hq * m, bk = wk + hkv * d * m, mix = bk + hkv * m;
        var y = new double[L.Rows * hq * T * dv];
        for (var b = 0; b < L.Rows; b++)
            for (var h = 0; h < hq; h++)
            {
                var g = h / L.GroupSize;
                var alpha = window == 0 ? 1.0 : Math.Exp(p[mix + h]);
                for (var t = 0; t < T; t++)
                {
                    var q = L.Query.AsSpan(((b * hq + h) * T + t) * d, d);
                    var phiQ = Phi(p, wq, bq, h, d, m, q);
                    var num = new double[dv];
                    var den = Epsilon;
                    var from = Math.Max(0, t - window + 1);
                    if (window > 0)
                    {
                        var qd = SummaryAttentionReference.Row(L.Query, ((b * hq + h) * T + t) * d, d);
                        var scores = Enumerable.Range(from, t - from + 1).Select(j =>
                            L.Scale * SummaryAttentionReference.Dot(qd, SummaryAttentionReference.Row(L.Key, ((b * hkv + g) * T + j) * d, d))).ToArray();
                        var c = scores.Max();
                        for (var j = from; j <= t; j++)
                        {
                            var a = Math.Exp(scores[j - from] - c);
                            den += a;
                            for (var e = 0; e < dv; e++) num[e] += a * L.Value[((b * hkv + g) * T + j) * dv + e];
                        }
                    }
                    for (var j = 0; j <= t - window; j++)
                    {
                        var phiK = Phi(p, wk, bk, g, d, m, L.Key.AsSpan(((b * hkv + g) * T + j) * d, d));
                        var a = alpha * SummaryAttentionReference.Dot(phiQ, phiK);
                        den += a;
                        for (var e = 0; e < dv; e++) num[e] += a * L.Value[((b * hkv + g) * T + j) * dv + e];
                    }
                    for (var e = 0; e < dv; e++) y[((b * hq + h) * T + t) * dv + e] = num[e] / den;
                }
            }
        return y;
    }

    public static double Loss(LayerAttention L, int m, int window, double[] p)
    {
        var y = Outputs(L, m, window, p);
        var sum = 0.0;
        for (var i = 0; i < y.Length; i++) sum += (y[i] - L.Output[i]) * (y[i] - L.Output[i]);
        return sum / y.Length;
    }
}
