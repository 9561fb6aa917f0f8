using System.Numerics.Tensors;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Llama2c;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;

namespace OnnxAttention.Host.Quality.Tuning;

/// <summary>
/// A llama2.c model with a constant-memory rule per layer, computed on the training side (float32, one row of T
/// positions at a time, the rows on all cores) with its backward pass written out, so that the whole model can be
/// tuned against the original's next-token distributions (LoLCATs' second stage, end to end). What is trained: the
/// fitted feature maps and hybrid mixes, and optionally the attention projections (wq, wk, wv, wo) of every layer;
/// the embedding, norms, feed-forward and classifier stay as they are. Hand-written gradients rather than TorchSharp:
/// TorchSharp-cpu 0.107.0's native library needs GLIBCXX_3.4.32, newer than this Debian's libstdc++ (3.4.30).
/// </summary>
public sealed class EndToEndModel
{
    private readonly Llama2cCheckpoint _w;
    private readonly TunedAttention[] _attention;
    private readonly float[][] _wq, _wk, _wv, _wo;
    private readonly Parameter[] _parameters;
    private readonly bool _projections;
    private readonly int _dim, _hidden, _heads, _kvHeads, _headDim, _kvDim, _vocab, _layers;

    /// <param name="rules">one rule per layer (<see cref="Supports"/>)</param>
    /// <param name="projections">also train wq, wk, wv and wo of every layer (the output model's weights then differ)</param>
    public EndToEndModel(Llama2cCheckpoint checkpoint, IReadOnlyList<AttentionRule> rules, bool projections)
    {
        var c = checkpoint.Config;
        if (rules.Count != c.Layers) throw new ArgumentException($"{rules.Count} rules for {c.Layers} layers");
        (_w, _projections) = (checkpoint, projections);
        (_dim, _hidden, _heads, _kvHeads, _headDim, _kvDim, _vocab, _layers) = (c.Dim, c.HiddenDim, c.Heads, c.KvHeads, c.HeadSize, c.KvDim, c.Vocab, c.Layers);
        _attention = rules.Select((r, l) => TunedAttention.From(r, c.Heads, c.KvHeads, c.HeadSize, l)).ToArray();
        _wq = checkpoint.Wq.Select(a => a.ToArray()).ToArray();
        _wk = checkpoint.Wk.Select(a => a.ToArray()).ToArray();
        _wv = checkpoint.Wv.Select(a => a.ToArray()).ToArray();
        _wo = checkpoint.Wo.Select(a => a.ToArray()).ToArray();
        var list = _attention.SelectMany(a => a.Parameters).ToList();
        if (projections)
        {
            for (var l = 0; l < _layers; l++)
            {
                list.Add(new Parameter($"layers.{l}.wq", _wq[l], ProjectionRate));
                list.Add(new Parameter($"layers.{l}.wk", _wk[l], ProjectionRate));
                list.Add(new Parameter($"layers.{l}.wv", _wv[l], ProjectionRate));
                list.Add(new Parameter($"layers.{l}.wo", _wo[l], ProjectionRate));
            }
        }
        for (var i = 0; i < list.Count; i++) list[i].Index = i;
        _parameters = [.. list];
    }

    /// <summary>Projections move this much slower than the maps: they are the model's own, already trained weights.</summary>
    public const float ProjectionRate = 0.1f;

    /// <summary>Whether the training side computes <paramref name="rule"/> (softmax, windows, fitted Hedgehog rules).</summary>
    public static bool Supports(AttentionRule rule) => TunedAttention.Supports(rule);

    public int Layers => _layers;

    public int Vocab => _vocab;

    /// <summary>Trainable numbers in all.</summary>
    public int ParameterCount => _parameters.Sum(p => p.Value.Length);

    /// <summary>All trainable numbers, flattened in a fixed order.</summary>
    public float[] GetParameters() => [.. _parameters.SelectMany(p => p.Value)];

    public void SetParameters(ReadOnlySpan<float> values)
    {
        if (values.Length != ParameterCount) throw new ArgumentException($"{values.Length} values for {ParameterCount} parameters");
        var offset = 0;
        foreach (var p in _parameters)
        {
            values.Slice(offset, p.Value.Length).CopyTo(p.Value);
            offset += p.Value.Length;
        }
    }

    internal IReadOnlyList<Parameter> Parameters => _parameters;

    /// <summary>The plan with the current numbers, one entry per layer.</summary>
    public LayeredRule Rule => new(_attention.Select((a, l) => new LayeredRule.Entry(a.ToRule(), [l])).ToList());

    /// <summary>Whether the output model's attention projections differ from the original's.</summary>
    public bool ChangesProjections => _projections;

    /// <summary>
    /// <paramref name="original"/> (the unswapped graph built from the same checkpoint) with the tuned projections as its
    /// layers.{l}.wq/wk/wv/wo.weight initializers ([in, out], as the graph builder writes them); unchanged without them.
    /// </summary>
    public ModelProto WithProjections(ModelProto original)
    {
        var copy = original.Clone();
        if (!_projections) return copy;
        for (var l = 0; l < _layers; l++)
        {
            Replace(copy, $"layers.{l}.wq.weight", _wq[l], _dim, _dim);
            Replace(copy, $"layers.{l}.wk.weight", _wk[l], _kvDim, _dim);
            Replace(copy, $"layers.{l}.wv.weight", _wv[l], _kvDim, _dim);
            Replace(copy, $"layers.{l}.wo.weight", _wo[l], _dim, _dim);
        }
        return copy;
    }

    private static void Replace(ModelProto model, string name, float[] outIn, int outDim, int inDim)
    {
        var initializers = model.Graph.Initializer;
        var at = initializers.ToList().FindIndex(t => t.Name == name);
        if (at < 0 || initializers[at].Dims.Count != 2 || initializers[at].Dims[0] != inDim || initializers[at].Dims[1] != outDim)
        {
            throw new ArgumentException($"the model has no initializer {name} [{inDim}, {outDim}] to take the tuned projection (not a graph built from a llama2.c checkpoint?)");
        }
        var transposed = new float[outIn.Length];
        for (var o = 0; o < outDim; o++)
        {
            for (var i = 0; i < inDim; i++) transposed[i * outDim + o] = outIn[o * inDim + i];
        }
        initializers[at] = Tensors.Float(name, transposed, inDim, outDim);
    }

    /// <summary>Logits [rows, T, vocab] of the training side's forward pass.</summary>
    public float[] Logits(long[] ids, int rows)
    {
        var length = Length(ids, rows);
        var logits = new float[(long)rows * length * _vocab];
        ForRows(rows, length, (worker, b) => worker.Forward(ids.AsSpan(b * length, length)).CopyTo(logits.AsSpan(b * length * _vocab, length * _vocab)));
        return logits;
    }

    /// <summary>
    /// Mean KL(teacher ‖ model) over every position of every row, teacher given as next-token probabilities [rows, T,
    /// vocab]; the gradient of that mean in <paramref name="gradient"/> (flattened as <see cref="GetParameters"/>) when given.
    /// Also returns the mean KL over positions from <paramref name="from"/> on.
    /// </summary>
    public (double Kl, double KlFrom) Loss(long[] ids, int rows, float[] teacher, int from, float[]? gradient)
    {
        var length = Length(ids, rows);
        if (teacher.Length != (long)rows * length * _vocab) throw new ArgumentException($"{teacher.Length} teacher probabilities for {rows} x {length} x {_vocab}");
        var perRow = new (double All, double From)[rows];
        var sets = ForRows(rows, length, (worker, b) =>
            perRow[b] = worker.LossAndGradient(ids.AsSpan(b * length, length), teacher.AsSpan(b * length * _vocab, length * _vocab), from,
                1f / ((float)rows * length), gradient is not null));
        if (gradient is not null)
        {
            if (gradient.Length != ParameterCount) throw new ArgumentException($"{gradient.Length} gradient slots for {ParameterCount} parameters");
            Array.Clear(gradient);
            foreach (var set in sets)
            {
                var offset = 0;
                foreach (var p in _parameters)
                {
                    var g = gradient.AsSpan(offset, p.Value.Length);
                    TensorPrimitives.Add(g, set[p.Index], g);
                    offset += p.Value.Length;
                }
            }
        }
        return (perRow.Sum(r => r.All) / (rows * length), perRow.Sum(r => r.From) / (rows * Math.Max(1, length - from)));
    }

    private int Length(long[] ids, int rows)
    {
        if (rows <= 0 || ids.Length % rows != 0 || ids.Length == 0) throw new ArgumentException($"{ids.Length} ids do not split into {rows} rows");
        var length = ids.Length / rows;
        if (length > _w.Config.MaxSequence) throw new ArgumentException($"rows of {length} tokens are longer than the model's {_w.Config.MaxSequence} positions");
        foreach (var id in ids)
        {
            if (id < 0 || id >= _vocab) throw new ArgumentException($"id {id} is outside the vocabulary of {_vocab}");
        }
        return length;
    }

    /// <summary>Runs <paramref name="body"/> for every row, rows spread over the cores; returns each worker's gradient set.</summary>
    private float[][][] ForRows(int rows, int length, Action<Worker, int> body)
    {
        var count = Math.Max(1, Math.Min(Environment.ProcessorCount, rows));
        var workers = new Worker[count];
        Parallel.For(0, count, w =>
        {
            var worker = workers[w] = new Worker(this, length);
            for (var b = w; b < rows; b += count) body(worker, b);
        });
        return workers.Select(w => w.Gradients).ToArray();
    }

    /// <summary>One thread's buffers for one row: every activation the backward pass needs, and its own gradients.</summary>
    private sealed class Worker
    {
        private readonly EndToEndModel _m;
        private readonly int _t;
        private readonly float[][] _x, _xn, _inv1, _q, _k, _v, _att, _den, _top, _mid, _xn2, _inv2, _h1, _h3, _gate;
        private readonly float[] _last, _final, _invFinal, _logits;

        public float[][] Gradients { get; }

        public Worker(EndToEndModel m, int length)
        {
            (_m, _t) = (m, length);
            float[][] Make(int width) => Enumerable.Range(0, m._layers).Select(_ => new float[length * width]).ToArray();
            (_x, _xn, _inv1, _q, _k, _v, _att) = (Make(m._dim), Make(m._dim), Make(1), Make(m._dim), Make(m._kvDim), Make(m._kvDim), Make(m._dim));
            (_den, _top, _mid, _xn2, _inv2) = (Make(m._heads), Make(m._heads), Make(m._dim), Make(m._dim), Make(1));
            (_h1, _h3, _gate) = (Make(m._hidden), Make(m._hidden), Make(m._hidden));
            (_last, _final, _invFinal, _logits) = (new float[length * m._dim], new float[length * m._dim], new float[length], new float[length * m._vocab]);
            Gradients = m._parameters.Select(p => new float[p.Value.Length]).ToArray();
        }

        public ReadOnlySpan<float> Forward(ReadOnlySpan<long> ids)
        {
            var m = _m;
            var w = m._w;
            int T = _t, D = m._dim, Hd = m._hidden;
            var x = _x[0];
            for (var t = 0; t < T; t++) w.TokenEmbedding.AsSpan((int)ids[t] * D, D).CopyTo(x.AsSpan(t * D, D));
            for (var l = 0; l < m._layers; l++)
            {
                x = _x[l];
                Dense.RmsNorm(x, w.AttentionNorm[l], _xn[l], _inv1[l], T, D);
                Dense.Forward(_xn[l], m._wq[l], _q[l], T, D, D);
                Dense.Forward(_xn[l], m._wk[l], _k[l], T, D, m._kvDim);
                Dense.Forward(_xn[l], m._wv[l], _v[l], T, D, m._kvDim);
                Dense.Rope(_q[l], T, D, m._headDim, w.FreqCisReal, w.FreqCisImag);
                Dense.Rope(_k[l], T, m._kvDim, m._headDim, w.FreqCisReal, w.FreqCisImag);
                m._attention[l].RoundKeysOrValues(_k[l].AsSpan(0, T * m._kvDim));
                m._attention[l].RoundKeysOrValues(_v[l].AsSpan(0, T * m._kvDim));
                for (var g = 0; g < m._kvHeads; g++) m._attention[l].Forward(_q[l], _k[l], _v[l], _att[l], _den[l], _top[l], T, g);
                var mid = _mid[l];
                Dense.Forward(_att[l], m._wo[l], mid, T, D, D);
                TensorPrimitives.Add(mid, x, mid);
                Dense.RmsNorm(mid, w.FfnNorm[l], _xn2[l], _inv2[l], T, D);
                Dense.Forward(_xn2[l], w.W1[l], _h1[l], T, D, Hd);
                Dense.Forward(_xn2[l], w.W3[l], _h3[l], T, D, Hd);
                var gate = _gate[l];
                for (var i = 0; i < gate.Length; i++)
                {
                    var a = _h1[l][i];
                    gate[i] = a / (1 + MathF.Exp(-a)) * _h3[l][i];
                }
                var next = l + 1 < m._layers ? _x[l + 1] : _last;
                Dense.Forward(gate, w.W2[l], next, T, Hd, D);
                TensorPrimitives.Add(next, mid, next);
            }
            Dense.RmsNorm(_last, w.FinalNorm, _final, _invFinal, T, D);
            Dense.Forward(_final, w.Classifier, _logits, T, D, m._vocab);
            return _logits;
        }

        public (double All, double From) LossAndGradient(ReadOnlySpan<long> ids, ReadOnlySpan<float> teacher, int from, float weight, bool backward)
        {
            var m = _m;
            var w = m._w;
            int T = _t, D = m._dim, Hd = m._hidden, V = m._vocab;
            Forward(ids);
            // KL(p ‖ q) = sum p (log p - log q); its gradient in the logits is (q - p) times the position's weight.
            double all = 0, late = 0;
            var dLogits = _logits; // overwritten in place: q - p
            for (var t = 0; t < T; t++)
            {
                var z = dLogits.AsSpan(t * V, V);
                var p = teacher.Slice(t * V, V);
                var max = TensorPrimitives.Max(z);
                var sum = 0.0;
                for (var i = 0; i < V; i++) sum += Math.Exp(z[i] - max);
                var logSum = max + Math.Log(sum);
                var kl = 0.0;
                for (var i = 0; i < V; i++)
                {
                    var logQ = z[i] - logSum;
                    if (p[i] > 0) kl += p[i] * (Math.Log(p[i]) - logQ);
                    z[i] = ((float)Math.Exp(logQ) - p[i]) * weight;
                }
                all += kl;
                if (t >= from) late += kl;
            }
            if (!backward) return (all, late);
            foreach (var g in Gradients) Array.Clear(g);

            var dx = new float[T * D];
            var scratch = new float[T * D];
            Dense.BackwardInput(dLogits, w.Classifier, scratch, T, D, V);
            Dense.RmsNormBackward(_last, w.FinalNorm, _invFinal, scratch, dx, T, D);
            var dGate = new float[T * Hd];
            var dh1 = new float[T * Hd];
            var dh3 = new float[T * Hd];
            var dAtt = new float[T * D];
            var dq = new float[T * D];
            var dk = new float[T * m._kvDim];
            var dv = new float[T * m._kvDim];
            for (var l = m._layers - 1; l >= 0; l--)
            {
                // Feed-forward: x_next = mid + W2 (silu(W1 n) * W3 n), n = rmsnorm(mid).
                Array.Clear(dGate);
                Dense.BackwardInput(dx, w.W2[l], dGate, T, Hd, D);
                for (var i = 0; i < dGate.Length; i++)
                {
                    var a = _h1[l][i];
                    var s = 1f / (1 + MathF.Exp(-a));
                    dh1[i] = dGate[i] * _h3[l][i] * s * (1 + a * (1 - s));
                    dh3[i] = dGate[i] * a * s;
                }
                Array.Clear(scratch);
                Dense.BackwardInput(dh1, w.W1[l], scratch, T, D, Hd);
                Dense.BackwardInput(dh3, w.W3[l], scratch, T, D, Hd);
                Dense.RmsNormBackward(_mid[l], w.FfnNorm[l], _inv2[l], scratch, dx, T, D);

                // Attention: mid = x + wo att(q, k, v), q k v from n = rmsnorm(x).
                Array.Clear(dAtt);
                Dense.BackwardInput(dx, m._wo[l], dAtt, T, D, D);
                Array.Clear(dq);
                Array.Clear(dk);
                Array.Clear(dv);
                for (var g = 0; g < m._kvHeads; g++)
                {
                    m._attention[l].Backward(_q[l], _k[l], _v[l], _att[l], _den[l], _top[l], dAtt, dq, dk, dv, Gradients, T, g);
                }
                Dense.Rope(dq, T, D, m._headDim, w.FreqCisReal, w.FreqCisImag, inverse: true);
                Dense.Rope(dk, T, m._kvDim, m._headDim, w.FreqCisReal, w.FreqCisImag, inverse: true);
                if (m._projections)
                {
                    var at = m._parameters.First(p => p.Name == $"layers.{l}.wq").Index;
                    Dense.BackwardWeight(dq, _xn[l], Gradients[at], T, D, D);
                    Dense.BackwardWeight(dk, _xn[l], Gradients[at + 1], T, D, m._kvDim);
                    Dense.BackwardWeight(dv, _xn[l], Gradients[at + 2], T, D, m._kvDim);
                    Dense.BackwardWeight(dx, _att[l], Gradients[at + 3], T, D, D);
                }
                Array.Clear(scratch);
                Dense.BackwardInput(dq, m._wq[l], scratch, T, D, D);
                Dense.BackwardInput(dk, m._wk[l], scratch, T, D, m._kvDim);
                Dense.BackwardInput(dv, m._wv[l], scratch, T, D, m._kvDim);
                Dense.RmsNormBackward(_x[l], w.AttentionNorm[l], _inv1[l], scratch, dx, T, D);
            }
            return (all, late);
        }
    }
}
