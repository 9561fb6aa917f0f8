using OnnxAttention.Graphs.Swapping;

namespace OnnxAttention.Host.Quality;

/// <summary>
/// Attention transfer (Hedgehog / LoLCATs stage 1): learns one layer's feature maps so that its replacement reproduces
/// the softmax attention's output on the original model's own queries, keys and values (mean squared error, Adam,
/// full batch). The replacement is normalised linear attention, y_t = phi(q_t) S_t / phi(q_t) . z_t with S_t, z_t
/// summing phi(k_j) v_j and phi(k_j) over j &lt;= t, or, with a window of W tokens, the LoLCATs hybrid that shares one
/// normaliser between exact scores inside the window and the linear memory of the keys that left it:
/// y_t = (sum_win e^(s_j - c) v_j + alpha_h phi(q_t) S_(t-W)) / (sum_win e^(s_j - c) + alpha_h phi(q_t) . z_(t-W)),
/// s_j = scale q_t . k_j, c the largest s_j in the window, alpha_h = exp(mix_h) per query head.
/// The gradients are written out: the causal sums run forward for the queries, backward for the keys, in O(T) per head.
/// </summary>
public sealed class FeatureMapFit
{
    /// <summary>The fitted maps, the per-head mix (all ones without a window) and the fit: MSE against the output's variance.</summary>
    public sealed record Result(FeatureProjection Query, FeatureProjection Key, float[] Mix, int Window, double Mse, double OutputVariance)
    {
        /// <summary>The share of the softmax output's variance the replacement reproduces.</summary>
        public double Explained => 1 - Mse / OutputVariance;
    }

    /// <summary>log alpha at the start of a fit with a window.</summary>
    public const float InitialMix = -6f;

    /// <summary>The mix moves this many times faster than the projections: it has far to go in log space.</summary>
    public const float MixRateFactor = 10f;

    /// <summary>Added to the normaliser, as the operators do.</summary>
    public const float Epsilon = 1e-6f;

    private readonly LayerAttention _layer;
    private readonly int _m;
    private readonly int _window;
    private readonly int _wq, _bq, _wk, _bk, _mix, _count;
    private readonly Lazy<(float[] Numerator, float[] Denominator)> _windowSums;

    public FeatureMapFit(LayerAttention layer, int projections, int window)
    {
        if (projections <= 0) throw new ArgumentException($"projections must be positive, got {projections}");
        if (window < 0) throw new ArgumentException($"window must be >= 0, got {window}");
        _layer = layer;
        _m = projections;
        _window = window;
        int hq = layer.QueryHeads, hkv = layer.KvHeads, d = layer.HeadDim;
        _wq = 0;
        _bq = _wq + hq * d * _m;
        _wk = _bq + hq * _m;
        _bk = _wk + hkv * d * _m;
        _mix = _bk + hkv * _m;
        _count = _mix + hq;
        _windowSums = new(WindowSums);
    }

    public int ParameterCount => _count;

    /// <summary>Identity-like projections (a query/key dimension per output, repeating) with a little seeded noise, mix 1.</summary>
    public float[] Initial(int seed)
    {
        var random = new Random(seed);
        var p = new float[_count];
        int d = _layer.HeadDim;
        void Projection(int offset, int heads)
        {
            for (var h = 0; h < heads; h++)
            {
                for (var i = 0; i < d; i++)
                {
                    for (var j = 0; j < _m; j++)
                    {
                        p[offset + (h * d + i) * _m + j] = (j % d == i ? 1f : 0f) + 0.1f * (float)(random.NextDouble() * 2 - 1);
                    }
                }
            }
        }
        Projection(_wq, _layer.QueryHeads);
        Projection(_wk, _layer.KvHeads);
        // The linear memory starts nearly silent beside the window: hundreds of evicted keys at alpha = 1 would drown it.
        for (var h = 0; h < _layer.QueryHeads; h++) p[_mix + h] = InitialMix;
        return p;
    }

    public Result ToResult(float[] p, double mse) => new(
        new FeatureProjection(_layer.QueryHeads, _layer.HeadDim, _m, p[_wq.._bq], p[_bq.._wk]),
        new FeatureProjection(_layer.KvHeads, _layer.HeadDim, _m, p[_wk.._bk], p[_bk.._mix]),
        _window == 0 ? [.. Enumerable.Repeat(1f, _layer.QueryHeads)] : [.. p[_mix.._count].Select(MathF.Exp)],
        _window, mse, Variance(_layer.Output));

    /// <summary>Adam on the full batch for <paramref name="steps"/> steps; the parameters with the least loss seen are kept.</summary>
    public Result Fit(int steps, float learningRate = 1e-2f, int seed = 1, CancellationToken cancel = default)
    {
        var p = Initial(seed);
        var gradient = new float[_count];
        var first = new float[_count];
        var second = new float[_count];
        var best = (Loss: double.PositiveInfinity, Parameters: p.ToArray());
        const float beta1 = 0.9f, beta2 = 0.999f;
        for (var step = 1; step <= steps; step++)
        {
            cancel.ThrowIfCancellationRequested();
            var loss = LossAndGradient(p, gradient);
            if (loss < best.Loss) best = (loss, p.ToArray());
            var correction1 = 1 - MathF.Pow(beta1, step);
            var correction2 = 1 - MathF.Pow(beta2, step);
            for (var i = 0; i < _count; i++)
            {
                first[i] = beta1 * first[i] + (1 - beta1) * gradient[i];
                second[i] = beta2 * second[i] + (1 - beta2) * gradient[i] * gradient[i];
                p[i] -= (i >= _mix ? MixRateFactor * learningRate : learningRate) * (first[i] / correction1) / (MathF.Sqrt(second[i] / correction2) + 1e-8f);
            }
        }
        var final = LossAndGradient(p, gradient);
        if (final < best.Loss) best = (final, p);
        return ToResult(best.Parameters, best.Loss);
    }

    /// <summary>Mean squared error over rows, query heads, positions and value dims; its gradient into <paramref name="gradient"/>.</summary>
    public double LossAndGradient(float[] p, float[] gradient)
    {
        var L = _layer;
        var jobs = L.Rows * L.KvHeads;
        var partial = new (double Loss, float[] Gradient)[jobs];
        Parallel.For(0, jobs, job => partial[job] = Job(p, job / L.KvHeads, job % L.KvHeads));
        Array.Clear(gradient);
        var loss = 0.0;
        foreach (var (l, g) in partial)
        {
            loss += l;
            for (var i = 0; i < _count; i++) gradient[i] += g[i];
        }
        return loss;
    }

    /// <summary>Row <paramref name="b"/>, KV head <paramref name="g"/> and its group of query heads.</summary>
    private (double, float[]) Job(float[] p, int b, int g)
    {
        var L = _layer;
        int T = L.Length, d = L.HeadDim, dv = L.ValueHeadDim, m = _m, F = 2 * m, group = L.GroupSize, w = _window;
        var window = _windowSums.Value;
        var norm = 2.0f / ((float)L.Rows * L.QueryHeads * T * dv);
        var grad = new float[_count];
        var keys = L.Key.AsSpan(((b * L.KvHeads + g) * T) * d, T * d);
        var values = L.Value.AsSpan(((b * L.KvHeads + g) * T) * dv, T * dv);
        var phiK = new float[T * F];
        for (var j = 0; j < T; j++) Phi(p, _wk, _bk, g, keys.Slice(j * d, d), phiK.AsSpan(j * F, F));

        var weighted = new float[group * T * F]; // alpha_h phi(q_t), the write into dS of the keys' sweep
        var dNum = new float[group * T * dv];
        var dDen = new float[group * T];
        var state = new float[F * dv];
        var normaliser = new float[F];
        var phiQ = new float[F];
        var dPhi = new float[F];
        var y = new float[dv];
        var linearNum = new float[dv];
        var loss = 0.0;
        for (var gi = 0; gi < group; gi++)
        {
            var h = g * group + gi;
            var alpha = w == 0 ? 1f : MathF.Exp(p[_mix + h]);
            var queries = L.Query.AsSpan(((b * L.QueryHeads + h) * T) * d, T * d);
            var targets = L.Output.AsSpan(((b * L.QueryHeads + h) * T) * dv, T * dv);
            Array.Clear(state);
            Array.Clear(normaliser);
            var dMix = 0f;
            for (var t = 0; t < T; t++)
            {
                // The key leaving the window (every key at once without one) joins the linear memory.
                var evicted = t - w;
                if (evicted >= 0)
                {
                    var pk = phiK.AsSpan(evicted * F, F);
                    var v = values.Slice(evicted * dv, dv);
                    for (var f = 0; f < F; f++)
                    {
                        normaliser[f] += pk[f];
                        for (var e = 0; e < dv; e++) state[f * dv + e] += pk[f] * v[e];
                    }
                }
                var q = queries.Slice(t * d, d);
                Phi(p, _wq, _bq, h, q, phiQ);
                Array.Clear(y);
                var den = 0f;
                if (w > 0)
                {
                    var at = (b * L.QueryHeads + h) * T + t;
                    window.Numerator.AsSpan(at * dv, dv).CopyTo(y);
                    den = window.Denominator[at];
                }
                var linearDen = 0f;
                for (var f = 0; f < F; f++) linearDen += phiQ[f] * normaliser[f];
                Array.Clear(linearNum);
                for (var f = 0; f < F; f++)
                {
                    for (var e = 0; e < dv; e++) linearNum[e] += phiQ[f] * state[f * dv + e];
                }
                den += alpha * linearDen + Epsilon;
                var gy = 0f;
                var dn = dNum.AsSpan((gi * T + t) * dv, dv);
                for (var e = 0; e < dv; e++)
                {
                    y[e] = (y[e] + alpha * linearNum[e]) / den;
                    var diff = y[e] - targets[t * dv + e];
                    loss += diff * diff;
                    dn[e] = norm * diff / den;
                    gy += norm * diff * y[e];
                }
                var dd = -gy / den;
                dDen[gi * T + t] = dd;
                var dAlpha = dd * linearDen;
                for (var e = 0; e < dv; e++) dAlpha += dn[e] * linearNum[e];
                dMix += dAlpha * alpha;
                var wq = weighted.AsSpan((gi * T + t) * F, F);
                for (var f = 0; f < F; f++)
                {
                    wq[f] = alpha * phiQ[f];
                    var s = normaliser[f] * dd;
                    for (var e = 0; e < dv; e++) s += state[f * dv + e] * dn[e];
                    dPhi[f] = alpha * s;
                }
                PhiBackward(p, _wq, _bq, h, q, phiQ, dPhi, grad);
            }
            if (w > 0) grad[_mix + h] += dMix;
        }

        // Key j is read by the queries t >= j + W: sweep backwards, adding query t = j + W before key j.
        Array.Clear(state);
        Array.Clear(normaliser);
        for (var j = T - 1; j >= 0; j--)
        {
            var t = j + w;
            if (t < T)
            {
                for (var gi = 0; gi < group; gi++)
                {
                    var wq = weighted.AsSpan((gi * T + t) * F, F);
                    var dn = dNum.AsSpan((gi * T + t) * dv, dv);
                    var dd = dDen[gi * T + t];
                    for (var f = 0; f < F; f++)
                    {
                        normaliser[f] += wq[f] * dd;
                        for (var e = 0; e < dv; e++) state[f * dv + e] += wq[f] * dn[e];
                    }
                }
            }
            var v = values.Slice(j * dv, dv);
            for (var f = 0; f < F; f++)
            {
                var s = normaliser[f];
                for (var e = 0; e < dv; e++) s += state[f * dv + e] * v[e];
                dPhi[f] = s;
            }
            PhiBackward(p, _wk, _bk, g, keys.Slice(j * d, d), phiK.AsSpan(j * F, F), dPhi, grad);
        }
        return (loss / ((double)L.Rows * L.QueryHeads * T * dv), grad);
    }

    /// <summary>
    /// The window's part of every query's output, sum_win e^(s_j - c) v_j and sum_win e^(s_j - c): it reads no fitted
    /// parameter, so it is computed once for the whole fit instead of at every step (empty without a window).
    /// </summary>
    private (float[] Numerator, float[] Denominator) WindowSums()
    {
        var L = _layer;
        int T = L.Length, d = L.HeadDim, dv = L.ValueHeadDim, w = _window;
        if (w == 0) return ([], []);
        var numerator = new float[L.Rows * L.QueryHeads * T * dv];
        var denominator = new float[L.Rows * L.QueryHeads * T];
        var scale = (float)L.Scale;
        Parallel.For(0, L.Rows * L.QueryHeads, job =>
        {
            int b = job / L.QueryHeads, h = job % L.QueryHeads, g = h / L.GroupSize;
            var keys = L.Key.AsSpan(((b * L.KvHeads + g) * T) * d, T * d);
            var values = L.Value.AsSpan(((b * L.KvHeads + g) * T) * dv, T * dv);
            var queries = L.Query.AsSpan(((b * L.QueryHeads + h) * T) * d, T * d);
            var scores = new float[w];
            for (var t = 0; t < T; t++)
            {
                var q = queries.Slice(t * d, d);
                var y = numerator.AsSpan((job * T + t) * dv, dv);
                var from = Math.Max(0, t - w + 1);
                var max = float.NegativeInfinity;
                for (var j = from; j <= t; j++)
                {
                    var s = 0f;
                    for (var i = 0; i < d; i++) s += q[i] * keys[j * d + i];
                    scores[j - from] = s * scale;
                    max = MathF.Max(max, scores[j - from]);
                }
                var den = 0f;
                for (var j = from; j <= t; j++)
                {
                    var a = MathF.Exp(scores[j - from] - max);
                    den += a;
                    for (var e = 0; e < dv; e++) y[e] += a * values[j * dv + e];
                }
                denominator[job * T + t] = den;
            }
        });
        return (numerator, denominator);
    }

    /// <summary>phi = [softmax(u), softmax(-u)], u = x W_h + b_h.</summary>
    private void Phi(float[] p, int weight, int bias, int head, ReadOnlySpan<float> x, Span<float> phi)
    {
        int d = _layer.HeadDim, m = _m;
        var u = phi[..m];
        for (var j = 0; j < m; j++) u[j] = p[bias + head * m + j];
        for (var i = 0; i < d; i++)
        {
            var xi = x[i];
            var row = p.AsSpan(weight + (head * d + i) * m, m);
            for (var j = 0; j < m; j++) u[j] += xi * row[j];
        }
        var n = phi[m..];
        for (var j = 0; j < m; j++) n[j] = -u[j];
        FeatureProjection.Softmax(u);
        FeatureProjection.Softmax(n);
    }

    /// <summary>Adds dL/dW_h and dL/db_h given dL/dphi; phi holds the forward values.</summary>
    private void PhiBackward(float[] p, int weight, int bias, int head, ReadOnlySpan<float> x, ReadOnlySpan<float> phi, ReadOnlySpan<float> dPhi, float[] grad)
    {
        int d = _layer.HeadDim, m = _m;
        Span<float> du = stackalloc float[m];
        float dotP = 0f, dotN = 0f;
        for (var j = 0; j < m; j++)
        {
            dotP += phi[j] * dPhi[j];
            dotN += phi[m + j] * dPhi[m + j];
        }
        for (var j = 0; j < m; j++)
        {
            // d softmax(u) and d softmax(-u) (whose derivative in u carries a minus sign).
            du[j] = phi[j] * (dPhi[j] - dotP) - phi[m + j] * (dPhi[m + j] - dotN);
            grad[bias + head * m + j] += du[j];
        }
        for (var i = 0; i < d; i++)
        {
            var xi = x[i];
            var row = grad.AsSpan(weight + (head * d + i) * m, m);
            for (var j = 0; j < m; j++) row[j] += xi * du[j];
        }
    }

    private static double Variance(float[] x)
    {
        var mean = x.Average(v => (double)v);
        return x.Average(v => (v - mean) * (v - mean));
    }
}
