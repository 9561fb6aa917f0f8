namespace OnnxAttention.Graphs.Llama2c;

/// <summary>
/// A straightforward double-precision forward pass of a llama2.c checkpoint with full causal softmax attention,
/// written from the model's definition (RMSNorm eps 1e-5, interleaved-pair RoPE from the stored tables, grouped KV
/// heads, SwiGLU). It is the yardstick for the ONNX graph built from the same weights.
/// </summary>
public static class LlamaReferenceForward
{
    public const double RmsEpsilon = 1e-5;

    /// <summary>Logits [tokens.Length, vocab] for one sequence.</summary>
    public static double[] Logits(Llama2cCheckpoint w, IReadOnlyList<long> tokens)
    {
        var c = w.Config;
        int d = c.Dim, hs = c.HeadSize, t = tokens.Count, kvDim = c.KvDim, group = c.Heads / c.KvHeads;
        var x = new double[t][];
        for (var i = 0; i < t; i++) x[i] = w.TokenEmbedding.Skip((int)tokens[i] * d).Take(d).Select(f => (double)f).ToArray();

        for (var l = 0; l < c.Layers; l++)
        {
            var q = new double[t][];
            var k = new double[t][];
            var v = new double[t][];
            for (var i = 0; i < t; i++)
            {
                var h = RmsNorm(x[i], w.AttentionNorm[l]);
                q[i] = MatVec(w.Wq[l], h, d, d);
                k[i] = MatVec(w.Wk[l], h, kvDim, d);
                v[i] = MatVec(w.Wv[l], h, kvDim, d);
                Rope(q[i], i, w);
                Rope(k[i], i, w);
            }
            for (var i = 0; i < t; i++)
            {
                var attended = new double[d];
                for (var head = 0; head < c.Heads; head++)
                {
                    var kvHead = head / group;
                    var scores = new double[i + 1];
                    var max = double.NegativeInfinity;
                    for (var j = 0; j <= i; j++)
                    {
                        var s = 0.0;
                        for (var e = 0; e < hs; e++) s += q[i][head * hs + e] * k[j][kvHead * hs + e];
                        scores[j] = s / Math.Sqrt(hs);
                        max = Math.Max(max, scores[j]);
                    }
                    var sum = 0.0;
                    for (var j = 0; j <= i; j++) sum += scores[j] = Math.Exp(scores[j] - max);
                    for (var j = 0; j <= i; j++)
                    {
                        for (var e = 0; e < hs; e++) attended[head * hs + e] += scores[j] / sum * v[j][kvHead * hs + e];
                    }
                }
                var o = MatVec(w.Wo[l], attended, d, d);
                for (var e = 0; e < d; e++) x[i][e] += o[e];
            }
            for (var i = 0; i < t; i++)
            {
                var h = RmsNorm(x[i], w.FfnNorm[l]);
                var a = MatVec(w.W1[l], h, c.HiddenDim, d);
                var b = MatVec(w.W3[l], h, c.HiddenDim, d);
                for (var e = 0; e < a.Length; e++) a[e] = a[e] / (1 + Math.Exp(-a[e])) * b[e];
                var f = MatVec(w.W2[l], a, d, c.HiddenDim);
                for (var e = 0; e < d; e++) x[i][e] += f[e];
            }
        }
        var logits = new double[t * c.Vocab];
        for (var i = 0; i < t; i++)
        {
            var h = RmsNorm(x[i], w.FinalNorm);
            MatVec(w.Classifier, h, c.Vocab, d).CopyTo(logits, i * c.Vocab);
        }
        return logits;
    }

    private static double[] RmsNorm(double[] x, float[] weight)
    {
        var ms = x.Sum(e => e * e) / x.Length;
        var r = 1.0 / Math.Sqrt(ms + RmsEpsilon);
        return x.Select((e, i) => e * r * weight[i]).ToArray();
    }

    /// <summary>y = W x with W stored [rows, cols] row-major.</summary>
    private static double[] MatVec(float[] w, double[] x, int rows, int cols)
    {
        var y = new double[rows];
        for (var r = 0; r < rows; r++)
        {
            var s = 0.0;
            for (var j = 0; j < cols; j++) s += w[r * cols + j] * x[j];
            y[r] = s;
        }
        return y;
    }

    /// <summary>Rotates consecutive pairs (x[2i], x[2i+1]) of every head by the stored angle for this position.</summary>
    private static void Rope(double[] x, int position, Llama2cCheckpoint w)
    {
        int hs = w.Config.HeadSize, half = hs / 2;
        for (var i = 0; i < x.Length; i += 2)
        {
            var pair = (i % hs) / 2;
            double cos = w.FreqCisReal[position * half + pair], sin = w.FreqCisImag[position * half + pair];
            double a = x[i], b = x[i + 1];
            x[i] = a * cos - b * sin;
            x[i + 1] = a * sin + b * cos;
        }
    }
}
