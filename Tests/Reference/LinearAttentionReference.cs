using OnnxAttention.Operators.LinearAttention;

namespace OnnxAttention.Tests.Reference;

/// <summary>
/// The definition of LinearAttention, written for clarity in double precision, token by token, straight from
/// the formulas (docs/operators/LinearAttention.md). Per token and KV head, with a_i = gamma * exp(g_i) (per key
/// row i; exp(g) for a per-head gate; 1 without gate):
///   S' = diag(a) S, nu' = a * nu;
///   linear, gated: S = S' + phi(k) v^T, nu = nu' + phi(k);
///   delta, gated_delta: S = S' + phi(k) (beta (v - S'^T phi(k)))^T, nu = nu' + phi(k) beta (1 - phi(k) . nu');
///   y = phi(s q) S, divided by phi(s q) . nu + eps when normalised; KV head = query head / group size.
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
    /// <param name="decay">log-space gate, [batch, seq, kvHeads * dk] or [batch, seq, kvHeads]; gated rules only</param>
    /// <param name="beta">[batch, seq, kvHeads] or [batch, seq, 1]; delta rules only</param>
    public static Result Run(LinearAttentionAttributes a, int batch, int seq, int dk, int dv,
        float[] query, float[] key, float[] value, float[]? pastState = null, float[]? pastNormalizer = null,
        float[]? decay = null, float[]? beta = null)
    {
        int hq = a.QueryHeads, hkv = a.KvHeads, group = hq / hkv;
        var gated = UpdateRules.IsGated(a.UpdateRule);
        var isDelta = UpdateRules.IsDelta(a.UpdateRule);
        if (gated != (decay != null) || isDelta != (beta != null))
        {
            throw new ArgumentException($"update_rule {a.UpdateRule}: decay given {decay != null}, beta given {beta != null}");
        }
        var gatePerKey = decay != null && decay.Length == batch * seq * hkv * dk;
        var betaPerHead = beta != null && beta.Length == batch * seq * hkv;
        var scale = (double)a.ScaleFor(dk);

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
                var row = b * seq + t;
                for (var h = 0; h < hkv; h++)
                {
                    var phiK = Phi(a.FeatureMap, key, (row * hkv + h) * dk, dk, 1.0);
                    var factor = new double[dk];
                    for (var i = 0; i < dk; i++)
                    {
                        var g = decay == null ? 0.0 : gatePerKey ? decay[(row * hkv + h) * dk + i] : decay[row * hkv + h];
                        factor[i] = a.Decay * Math.Exp(g);
                    }
                    for (var i = 0; i < dk; i++)
                    {
                        z[(b * hkv + h) * dk + i] *= factor[i];
                        for (var j = 0; j < dv; j++) s[((b * hkv + h) * dk + i) * dv + j] *= factor[i];
                    }

                    var write = new double[dv];
                    var normalizerWrite = 1.0;
                    for (var j = 0; j < dv; j++) write[j] = value[(row * hkv + h) * dv + j];
                    if (isDelta)
                    {
                        double strength = beta![betaPerHead ? row * hkv + h : row];
                        var retrievedOne = 0.0;
                        for (var i = 0; i < dk; i++) retrievedOne += z[(b * hkv + h) * dk + i] * phiK[i];
                        normalizerWrite = strength * (1 - retrievedOne);
                        for (var j = 0; j < dv; j++)
                        {
                            var retrieved = 0.0;
                            for (var i = 0; i < dk; i++) retrieved += s[((b * hkv + h) * dk + i) * dv + j] * phiK[i];
                            write[j] = strength * (write[j] - retrieved);
                        }
                    }
                    for (var i = 0; i < dk; i++)
                    {
                        z[(b * hkv + h) * dk + i] += phiK[i] * normalizerWrite;
                        for (var j = 0; j < dv; j++) s[((b * hkv + h) * dk + i) * dv + j] += phiK[i] * write[j];
                    }
                }
                for (var h = 0; h < hq; h++)
                {
                    var kv = h / group;
                    var phiQ = Phi(a.FeatureMap, query, (row * hq + h) * dk, dk, scale);
                    var denominator = (double)a.Epsilon;
                    for (var i = 0; i < dk; i++) denominator += phiQ[i] * z[(b * hkv + kv) * dk + i];
                    for (var j = 0; j < dv; j++)
                    {
                        var acc = 0.0;
                        for (var i = 0; i < dk; i++) acc += phiQ[i] * s[((b * hkv + kv) * dk + i) * dv + j];
                        y[(row * hq + h) * dv + j] = a.Normalize ? acc / denominator : acc;
                    }
                }
            }
        return new Result(y, s, z);
    }

    /// <summary>phi of one head vector x[offset, offset + length): phi(scale x) element-wise, scale x / sqrt(|x|^2 + 1e-6) for l2norm.</summary>
    public static double[] Phi(FeatureMap map, float[] x, int offset, int length, double scale)
    {
        var result = new double[length];
        if (map == FeatureMap.L2Norm)
        {
            var sumOfSquares = 0.0;
            for (var i = 0; i < length; i++) sumOfSquares += (double)x[offset + i] * x[offset + i];
            var norm = Math.Sqrt(sumOfSquares + FeatureMaps.L2NormEpsilon);
            for (var i = 0; i < length; i++) result[i] = scale * x[offset + i] / norm;
            return result;
        }
        for (var i = 0; i < length; i++) result[i] = Phi(map, scale * x[offset + i]);
        return result;
    }

    /// <summary>The element-wise maps at one point.</summary>
    public static double Phi(FeatureMap map, double x) => map switch
    {
        FeatureMap.Identity => x,
        FeatureMap.Relu => Math.Max(x, 0),
        FeatureMap.SquaredRelu => Math.Max(x, 0) * Math.Max(x, 0),
        FeatureMap.EluPlusOne => x > 0 ? x + 1 : Math.Exp(x),
        _ => throw new ArgumentOutOfRangeException(nameof(map), map, "not an element-wise feature map"),
    };
}
