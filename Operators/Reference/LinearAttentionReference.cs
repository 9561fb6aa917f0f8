using OnnxAttention.Operators.LinearAttention;

namespace OnnxAttention.Operators.Reference;

/// <summary>
/// The definition of LinearAttention, written for clarity in double precision, token by token, straight from
/// the formulas: mu_i = mu_{i-1} + phi(k_i)^T v_i, nu_i = nu_{i-1} + phi(k_i),
/// y_i = phi(s q_i) mu_i / (phi(s q_i) . nu_i + eps) per query head, KV head = query head / group size.
/// Fast kernels are tested against this; it is never used to produce results.
/// </summary>
public static class LinearAttentionReference
{
    public sealed record Result(double[] Output, double[] State, double[] Normalizer);

    /// <param name="query">[batch, seq, qHeads * dk]</param>
    /// <param name="key">[batch, seq, kvHeads * dk]</param>
    /// <param name="value">[batch, seq, kvHeads * dv]</param>
    /// <param name="pastState">[batch, kvHeads, dk, dv] or null for zeros</param>
    /// <param name="pastNormalizer">[batch, kvHeads, dk] or null for zeros</param>
    public static Result Run(LinearAttentionAttributes a, int batch, int seq, int dk, int dv,
        float[] query, float[] key, float[] value, float[]? pastState = null, float[]? pastNormalizer = null)
    {
        int hq = a.QueryHeads, hkv = a.KvHeads, group = hq / hkv;
        var y = new double[batch * seq * hq * dv];
        var s = new double[batch * hkv * dk * dv];
        var z = new double[batch * hkv * dk];
        if (pastState != null)
        {
            for (var i = 0; i < s.Length; i++) s[i] = pastState[i];
        }
        if (pastNormalizer != null)
        {
            for (var i = 0; i < z.Length; i++) z[i] = pastNormalizer[i];
        }

        for (var b = 0; b < batch; b++)
        for (var t = 0; t < seq; t++)
        {
            for (var h = 0; h < hkv; h++)
            {
                var phiK = new double[dk];
                for (var i = 0; i < dk; i++) phiK[i] = Phi(a.FeatureMap, key[((b * seq + t) * hkv + h) * dk + i]);
                for (var i = 0; i < dk; i++)
                {
                    z[(b * hkv + h) * dk + i] += phiK[i];
                    for (var j = 0; j < dv; j++)
                    {
                        s[((b * hkv + h) * dk + i) * dv + j] += phiK[i] * value[((b * seq + t) * hkv + h) * dv + j];
                    }
                }
            }
            for (var h = 0; h < hq; h++)
            {
                var kv = h / group;
                var phiQ = new double[dk];
                for (var i = 0; i < dk; i++) phiQ[i] = Phi(a.FeatureMap, (double)a.Scale * query[((b * seq + t) * hq + h) * dk + i]);
                var denominator = (double)a.Epsilon;
                for (var i = 0; i < dk; i++) denominator += phiQ[i] * z[(b * hkv + kv) * dk + i];
                for (var j = 0; j < dv; j++)
                {
                    var acc = 0.0;
                    for (var i = 0; i < dk; i++) acc += phiQ[i] * s[((b * hkv + kv) * dk + i) * dv + j];
                    y[((b * seq + t) * hq + h) * dv + j] = a.Normalize ? acc / denominator : acc;
                }
            }
        }
        return new Result(y, s, z);
    }

    public static double Phi(FeatureMap map, double x) => map switch
    {
        FeatureMap.Identity => x,
        FeatureMap.Relu => Math.Max(x, 0),
        FeatureMap.EluPlusOne => x > 0 ? x + 1 : Math.Exp(x),
        _ => throw new ArgumentOutOfRangeException(nameof(map)),
    };
}
