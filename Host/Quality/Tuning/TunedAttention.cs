using System.Numerics.Tensors;
using OnnxAttention.Graphs.Swapping;

namespace OnnxAttention.Host.Quality.Tuning;

/// <summary>
/// One layer's constant-memory attention as the training side computes it, with its backward pass into the queries,
/// keys, values and the layer's own parameters. Written to the operators' arithmetic so that the tuned numbers carry
/// over exactly: an exact window (WindowAttention: positions p - W &lt; j &lt;= p plus sinks), normalised linear attention on
/// learned Hedgehog features (LinearAttention, identity map, y = phi(q) S / (phi(q) . z + 1e-6)), or both sharing one
/// normaliser (HybridAttention compress=hedgehog: y = (sum_win e^(s - c) v + a_h phi(q) S_(t-W)) / (sum_win e^(s - c) +
/// a_h phi(q) . z_(t-W) + 1e-6), c the window's largest score, a_h = e^(mix_h)). Inputs are one row, position-major:
/// q [T, Hq*d], k and v [T, Hkv*d].
/// </summary>
internal sealed class TunedAttention
{
    private const float Epsilon = FeatureMapFit.Epsilon;

    private readonly AttentionRule _rule;
    private readonly int _hq, _hkv, _d, _window, _sinks, _m;
    private readonly float _scale;
    private readonly bool _exact, _linear;

    private TunedAttention(AttentionRule rule, int queryHeads, int kvHeads, int headDim, int window, int sinks, int projections, bool exact, bool linear)
    {
        (_rule, _hq, _hkv, _d, _window, _sinks, _m, _exact, _linear) = (rule, queryHeads, kvHeads, headDim, window, sinks, projections, exact, linear);
        _scale = 1f / MathF.Sqrt(headDim);
    }

    public Parameter? QueryWeight { get; private init; }

    public Parameter? QueryBias { get; private init; }

    public Parameter? KeyWeight { get; private init; }

    public Parameter? KeyBias { get; private init; }

    /// <summary>log a_h per query head (the hybrid only).</summary>
    public Parameter? LogMix { get; private init; }

    /// <summary>
    /// The rules the training side computes: softmax, windows (with sinks) and the fitted Hedgehog rules, each also with
    /// its state in float16 (keys and values rounded to float16 before the attention, as the swap does) or, where it
    /// keeps a cache of keys and values, int8 (each head's key and value vector quantised and dequantised).
    /// </summary>
    public static bool Supports(AttentionRule rule) => rule is SoftmaxRule or WindowRule or RecomputedWindowRule or FittedLinearRule or FittedHybridRule
        || rule is StateTypeRule { StateType: Graphs.Onnx.TensorProto.Types.DataType.Float16 or Graphs.Onnx.TensorProto.Types.DataType.Int8, Inner: not (SoftmaxRule or StateTypeRule) } s
            && Supports(s.Inner) && StateTypeRule.Refusal(s.Inner, s.StateType) is null;

    /// <summary>
    /// The state type keys and values are rounded to before the attention, as the swap rounds them (float32: not
    /// rounded; float16; int8 per head vector); the gradient passes straight through.
    /// </summary>
    public Graphs.Onnx.TensorProto.Types.DataType StateType { get; private init; } = Graphs.Onnx.TensorProto.Types.DataType.Float;

    /// <summary>Rounds one row's keys or values [T, kv_heads * head_dim] in place to what the state keeps (see <see cref="StateType"/>).</summary>
    public void RoundKeysOrValues(Span<float> x)
    {
        switch (StateType)
        {
            case Graphs.Onnx.TensorProto.Types.DataType.Float16:
                Dense.RoundToHalf(x);
                break;
            case Graphs.Onnx.TensorProto.Types.DataType.Int8:
                for (var i = 0; i < x.Length; i += _d) StateTypeRule.RoundToInt8(x.Slice(i, _d));
                break;
        }
    }

    public static TunedAttention From(AttentionRule rule, int queryHeads, int kvHeads, int headDim, int layer)
    {
        string Name(string what) => $"layers.{layer}.{what}";
        void Check(FeatureProjection q, FeatureProjection k)
        {
            if (q.Heads != queryHeads || k.Heads != kvHeads || q.HeadDim != headDim || k.HeadDim != headDim || q.Projections != k.Projections)
            {
                throw new ArgumentException($"layer {layer}: the feature maps were fitted to {q.Heads} / {k.Heads} heads of size {q.HeadDim}, the model has {queryHeads} / {kvHeads} of size {headDim}");
            }
        }
        return rule switch
        {
            StateTypeRule s when Supports(s) => Narrowed(From(s.Inner, queryHeads, kvHeads, headDim, layer), s.StateType),
            SoftmaxRule => new TunedAttention(rule, queryHeads, kvHeads, headDim, int.MaxValue, 0, 0, exact: true, linear: false),
            WindowRule w => new TunedAttention(rule, queryHeads, kvHeads, headDim, w.Window, w.Sinks, 0, exact: true, linear: false),
            // Keys recomputed from ids are the keys the layer computes (with its tuned projections): an exact window.
            RecomputedWindowRule w => new TunedAttention(rule, queryHeads, kvHeads, headDim, w.Window, 0, 0, exact: true, linear: false),
            FittedLinearRule f => Check2(f.Query, f.Key, () => new TunedAttention(rule, queryHeads, kvHeads, headDim, 0, 0, f.Query.Projections, exact: false, linear: true)
            {
                QueryWeight = new Parameter(Name("feature_q.weight"), [.. f.Query.Weight], 1f),
                QueryBias = new Parameter(Name("feature_q.bias"), [.. f.Query.Bias], 1f),
                KeyWeight = new Parameter(Name("feature_k.weight"), [.. f.Key.Weight], 1f),
                KeyBias = new Parameter(Name("feature_k.bias"), [.. f.Key.Bias], 1f),
            }),
            FittedHybridRule f => Check2(f.Query, f.Key, () => new TunedAttention(rule, queryHeads, kvHeads, headDim, f.Window, 0, f.Query.Projections, exact: true, linear: true)
            {
                QueryWeight = new Parameter(Name("feature_q.weight"), [.. f.Query.Weight], 1f),
                QueryBias = new Parameter(Name("feature_q.bias"), [.. f.Query.Bias], 1f),
                KeyWeight = new Parameter(Name("feature_k.weight"), [.. f.Key.Weight], 1f),
                KeyBias = new Parameter(Name("feature_k.bias"), [.. f.Key.Bias], 1f),
                LogMix = new Parameter(Name("mix"), [.. f.Mix.Select(a => MathF.Log(a))], FeatureMapFit.MixRateFactor),
            }),
            _ => throw new ArgumentException($"layer {layer}: end-to-end tuning computes softmax, window and fitted Hedgehog rules, not {rule.Spelling}"),
        };

        TunedAttention Narrowed(TunedAttention inner, Graphs.Onnx.TensorProto.Types.DataType type) => new(rule, queryHeads, kvHeads, headDim, inner._window, inner._sinks, inner._m, inner._exact, inner._linear)
        {
            QueryWeight = inner.QueryWeight,
            QueryBias = inner.QueryBias,
            KeyWeight = inner.KeyWeight,
            KeyBias = inner.KeyBias,
            LogMix = inner.LogMix,
            StateType = type,
            _inner = inner,
        };

        TunedAttention Check2(FeatureProjection q, FeatureProjection k, Func<TunedAttention> make)
        {
            Check(q, k);
            return make();
        }
    }

    public IEnumerable<Parameter> Parameters => new[] { QueryWeight, QueryBias, KeyWeight, KeyBias, LogMix }.OfType<Parameter>();

    /// <summary>The rule with the current (tuned) numbers.</summary>
    public AttentionRule ToRule()
    {
        if (_inner is not null) return new StateTypeRule(_inner.ToRule(), StateType);
        if (!_linear) return _rule;
        var query = new FeatureProjection(_hq, _d, _m, [.. QueryWeight!.Value], [.. QueryBias!.Value]);
        var key = new FeatureProjection(_hkv, _d, _m, [.. KeyWeight!.Value], [.. KeyBias!.Value]);
        return _exact ? new FittedHybridRule(_window, query, key, [.. LogMix!.Value.Select(a => MathF.Exp(a))]) : new FittedLinearRule(query, key);
    }

    private int F => 2 * _m;

    /// <summary>The float32 rule a float16- or int8-state layer wraps (the same parameter objects).</summary>
    private TunedAttention? _inner;

    /// <summary>
    /// Output [T, Hq*d] of KV head <paramref name="g"/>'s query heads; keeps each query's normaliser and largest window
    /// score (den, top: [Hq, T]) for the backward pass.
    /// </summary>
    public void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> output, Span<float> den, Span<float> top, int length, int g)
    {
        int T = length, d = _d, F = this.F, group = _hq / _hkv, qs = _hq * d, ks = _hkv * d;
        var phiK = KeyFeatures(k, T, g);
        var state = new float[F * d];
        var normaliser = new float[F];
        var phiQ = new float[F];
        var scores = new float[T];
        var y = new float[d];
        for (var gi = 0; gi < group; gi++)
        {
            var h = g * group + gi;
            var alpha = !_linear ? 0f : _exact ? MathF.Exp(LogMix!.Value[h]) : 1f;
            Array.Clear(state);
            Array.Clear(normaliser);
            for (var t = 0; t < T; t++)
            {
                var qt = q.Slice(t * qs + h * d, d);
                Array.Clear(y);
                var sum = 0f;
                if (_exact)
                {
                    var (from, sinks, count, max, _) = Scores(qt, k, t, g, scores);
                    for (var n = 0; n < count; n++)
                    {
                        var j = Key(n, from, sinks);
                        var a = MathF.Exp(scores[n] - max);
                        sum += a;
                        TensorPrimitives.MultiplyAdd(v.Slice(j * ks + g * d, d), a, y, y);
                    }
                    top[h * T + t] = max;
                }
                if (_linear)
                {
                    var evicted = t - (_exact ? _window : 0);
                    if (evicted >= 0) Remember(phiK.AsSpan(evicted * F, F), v.Slice(evicted * ks + g * d, d), state, normaliser);
                    Phi(QueryWeight!.Value, QueryBias!.Value, h, qt, phiQ);
                    for (var f = 0; f < F; f++) TensorPrimitives.MultiplyAdd(state.AsSpan(f * d, d), alpha * phiQ[f], y, y);
                    sum += alpha * TensorPrimitives.Dot(phiQ, normaliser) + Epsilon;
                }
                den[h * T + t] = sum;
                TensorPrimitives.Divide(y, sum, output.Slice(t * qs + h * d, d));
            }
        }
    }

    /// <summary>phi(k_j) of KV head <paramref name="g"/> for every position [T, F]; empty without a linear part.</summary>
    private float[] KeyFeatures(ReadOnlySpan<float> k, int length, int g)
    {
        if (!_linear) return [];
        int d = _d, F = this.F, ks = _hkv * d;
        var phiK = new float[length * F];
        for (var j = 0; j < length; j++) Phi(KeyWeight!.Value, KeyBias!.Value, g, k.Slice(j * ks + g * d, d), phiK.AsSpan(j * F, F));
        return phiK;
    }

    /// <summary>Adds the gradients into dq, dk, dv and <paramref name="gradients"/> (indexed by <see cref="Parameter.Index"/>).</summary>
    public void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> output, ReadOnlySpan<float> den, ReadOnlySpan<float> top,
        ReadOnlySpan<float> dOutput, Span<float> dq, Span<float> dk, Span<float> dv, float[][] gradients, int length, int g)
    {
        int T = length, d = _d, F = this.F, group = _hq / _hkv, qs = _hq * d, ks = _hkv * d;
        var phiK = KeyFeatures(k, T, g);
        var weighted = new float[_linear ? group * T * F : 0]; // a_h phi(q_t): what query t wrote into the keys' gradient
        var dNum = new float[_linear ? group * T * d : 0];
        var dDen = new float[_linear ? group * T : 0];
        var state = new float[F * d];
        var normaliser = new float[F];
        var phiQ = new float[F];
        var dPhi = new float[F];
        var scores = new float[T];
        var dn = new float[d];
        for (var gi = 0; gi < group; gi++)
        {
            var h = g * group + gi;
            var alpha = !_linear ? 0f : _exact ? MathF.Exp(LogMix!.Value[h]) : 1f;
            var dMix = 0.0;
            Array.Clear(state);
            Array.Clear(normaliser);
            for (var t = 0; t < T; t++)
            {
                var qt = q.Slice(t * qs + h * d, d);
                var dqt = dq.Slice(t * qs + h * d, d);
                var dy = dOutput.Slice(t * qs + h * d, d);
                var sum = den[h * T + t];
                // y = num / den: dL/dnum = dy / den, dL/dden = -dy . y / den.
                TensorPrimitives.Divide(dy, sum, dn);
                var dd = -TensorPrimitives.Dot(dy, output.Slice(t * qs + h * d, d)) / sum;
                if (_exact)
                {
                    var (from, sinks, count, _, arg) = Scores(qt, k, t, g, scores);
                    var max = top[h * T + t];
                    var dTop = 0f;
                    for (var n = 0; n < count; n++)
                    {
                        var j = Key(n, from, sinks);
                        var vj = v.Slice(j * ks + g * d, d);
                        var a = MathF.Exp(scores[n] - max);
                        var ds = a * (TensorPrimitives.Dot(dn, vj) + dd);
                        scores[n] = ds;
                        dTop -= ds;
                        TensorPrimitives.MultiplyAdd(dn, a, dv.Slice(j * ks + g * d, d), dv.Slice(j * ks + g * d, d));
                    }
                    // c is the largest score: its gradient goes to that score (zero without a linear part).
                    scores[arg] += dTop;
                    for (var n = 0; n < count; n++)
                    {
                        var j = Key(n, from, sinks);
                        var ds = scores[n] * _scale;
                        TensorPrimitives.MultiplyAdd(k.Slice(j * ks + g * d, d), ds, dqt, dqt);
                        TensorPrimitives.MultiplyAdd(qt, ds, dk.Slice(j * ks + g * d, d), dk.Slice(j * ks + g * d, d));
                    }
                }
                if (_linear)
                {
                    var evicted = t - (_exact ? _window : 0);
                    if (evicted >= 0) Remember(phiK.AsSpan(evicted * F, F), v.Slice(evicted * ks + g * d, d), state, normaliser);
                    Phi(QueryWeight!.Value, QueryBias!.Value, h, qt, phiQ);
                    var linearDen = TensorPrimitives.Dot(phiQ, normaliser);
                    var linearNum = 0f;
                    for (var f = 0; f < F; f++)
                    {
                        var sn = TensorPrimitives.Dot(state.AsSpan(f * d, d), dn);
                        linearNum += phiQ[f] * sn;
                        dPhi[f] = alpha * (sn + normaliser[f] * dd);
                    }
                    dMix += alpha * (linearNum + linearDen * dd);
                    TensorPrimitives.Multiply(phiQ, alpha, weighted.AsSpan((gi * T + t) * F, F));
                    dn.CopyTo(dNum.AsSpan((gi * T + t) * d, d));
                    dDen[gi * T + t] = dd;
                    PhiBackward(QueryWeight!, QueryBias!, h, qt, phiQ, dPhi, dqt, gradients);
                }
            }
            if (LogMix is not null) gradients[LogMix.Index][h] += (float)dMix;
        }
        if (!_linear) return;

        // Key j is read by the queries t >= j + W: sweep backwards, adding query t = j + W before key j.
        var shift = _exact ? _window : 0;
        Array.Clear(state);
        Array.Clear(normaliser);
        for (var j = T - 1; j >= 0; j--)
        {
            var t = j + shift;
            if (t < T)
            {
                for (var gi = 0; gi < group; gi++)
                {
                    var wq = weighted.AsSpan((gi * T + t) * F, F);
                    var dnt = dNum.AsSpan((gi * T + t) * d, d);
                    TensorPrimitives.MultiplyAdd(wq, dDen[gi * T + t], normaliser, normaliser);
                    for (var f = 0; f < F; f++) TensorPrimitives.MultiplyAdd(dnt, wq[f], state.AsSpan(f * d, d), state.AsSpan(f * d, d));
                }
            }
            var vj = v.Slice(j * ks + g * d, d);
            var pk = phiK.AsSpan(j * F, F);
            var dvj = dv.Slice(j * ks + g * d, d);
            for (var f = 0; f < F; f++)
            {
                var row = state.AsSpan(f * d, d);
                dPhi[f] = normaliser[f] + TensorPrimitives.Dot(row, vj);
                TensorPrimitives.MultiplyAdd(row, pk[f], dvj, dvj);
            }
            PhiBackward(KeyWeight!, KeyBias!, g, k.Slice(j * ks + g * d, d), pk, dPhi, dk.Slice(j * ks + g * d, d), gradients);
        }
    }

    /// <summary>The keys query t sees exactly: sinks below the window, then the window; scaled scores, the largest and where.</summary>
    private (int From, int Sinks, int Count, float Max, int Arg) Scores(ReadOnlySpan<float> qt, ReadOnlySpan<float> k, int t, int g, Span<float> scores)
    {
        int d = _d, ks = _hkv * d;
        var from = (int)Math.Max(0L, (long)t - _window + 1);
        var sinks = Math.Min(_sinks, from);
        var count = sinks + t - from + 1;
        var max = float.NegativeInfinity;
        var arg = 0;
        for (var n = 0; n < count; n++)
        {
            var j = Key(n, from, sinks);
            var s = TensorPrimitives.Dot(qt, k.Slice(j * ks + g * d, d)) * _scale;
            scores[n] = s;
            if (s > max)
            {
                max = s;
                arg = n;
            }
        }
        return (from, sinks, count, max, arg);
    }

    private static int Key(int n, int from, int sinks) => n < sinks ? n : from + n - sinks;

    private static void Remember(ReadOnlySpan<float> phiK, ReadOnlySpan<float> v, float[] state, float[] normaliser)
    {
        TensorPrimitives.Add(normaliser, phiK, normaliser);
        for (var f = 0; f < phiK.Length; f++) TensorPrimitives.MultiplyAdd(v, phiK[f], state.AsSpan(f * v.Length, v.Length), state.AsSpan(f * v.Length, v.Length));
    }

    /// <summary>phi = [softmax(u), softmax(-u)], u = x W_h + b_h.</summary>
    private void Phi(float[] weight, float[] bias, int head, ReadOnlySpan<float> x, Span<float> phi)
    {
        int d = _d, m = _m;
        var u = phi[..m];
        bias.AsSpan(head * m, m).CopyTo(u);
        for (var i = 0; i < d; i++) TensorPrimitives.MultiplyAdd(weight.AsSpan((head * d + i) * m, m), x[i], u, u);
        var n = phi[m..];
        TensorPrimitives.Negate(u, n);
        FeatureProjection.Softmax(u);
        FeatureProjection.Softmax(n);
    }

    /// <summary>Adds dL/dx, dL/dW_h and dL/db_h given dL/dphi; phi holds the forward values.</summary>
    private void PhiBackward(Parameter weight, Parameter bias, int head, ReadOnlySpan<float> x, ReadOnlySpan<float> phi, ReadOnlySpan<float> dPhi, Span<float> dx, float[][] gradients)
    {
        int d = _d, m = _m;
        Span<float> du = stackalloc float[m];
        var dotP = TensorPrimitives.Dot(phi[..m], dPhi[..m]);
        var dotN = TensorPrimitives.Dot(phi[m..], dPhi[m..]);
        for (var j = 0; j < m; j++) du[j] = phi[j] * (dPhi[j] - dotP) - phi[m + j] * (dPhi[m + j] - dotN);
        var gb = gradients[bias.Index].AsSpan(head * m, m);
        TensorPrimitives.Add(gb, du, gb);
        var gw = gradients[weight.Index];
        for (var i = 0; i < d; i++)
        {
            var row = weight.Value.AsSpan((head * d + i) * m, m);
            dx[i] += TensorPrimitives.Dot(row, du);
            var grow = gw.AsSpan((head * d + i) * m, m);
            TensorPrimitives.MultiplyAdd(du, x[i], grow, grow);
        }
    }
}
