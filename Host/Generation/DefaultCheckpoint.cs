using OnnxAttention.Graphs.Llama2c;

namespace OnnxAttention.Host.Generation;

/// <summary>
/// The default model needs no download: a Llama-shaped checkpoint (stories260K's sizes) whose weights come from a
/// fixed seed, with standard RoPE tables. It exercises every part of the pipeline; its text is meaningless.
/// </summary>
public static class DefaultCheckpoint
{
    public static readonly Llama2cConfig Config = new(Dim: 64, HiddenDim: 172, Layers: 5, Heads: 8, KvHeads: 4, Vocab: 512, MaxSequence: 4096, SharedClassifier: false);

    /// <summary>Seeded weights for <see cref="Config"/>, or for <paramref name="config"/> (tiny models for tests and the fuzzer).</summary>
    public static Llama2cCheckpoint Create(int seed = 260, Llama2cConfig? config = null)
    {
        var c = config ?? Config;
        var rng = new Random(seed);
        float[] Random(int n, float scale) => Enumerable.Range(0, n).Select(_ => scale * (2f * (float)rng.NextDouble() - 1f)).ToArray();
        float[][] PerLayer(int n, float scale) => Enumerable.Range(0, c.Layers).Select(_ => Random(n, scale)).ToArray();
        float[][] Ones() => Enumerable.Range(0, c.Layers).Select(_ => Enumerable.Repeat(1f, c.Dim).ToArray()).ToArray();
        int half = c.HeadSize / 2;
        var real = new float[c.MaxSequence * half];
        var imag = new float[c.MaxSequence * half];
        for (var p = 0; p < c.MaxSequence; p++)
            for (var i = 0; i < half; i++)
            {
                var angle = p / Math.Pow(10000, 2.0 * i / c.HeadSize);
                real[p * half + i] = (float)Math.Cos(angle);
                imag[p * half + i] = (float)Math.Sin(angle);
            }
        var w = 1f / MathF.Sqrt(c.Dim);
        var embedding = Random(c.Vocab * c.Dim, 1f);
        return new Llama2cCheckpoint
        {
            Config = c,
            TokenEmbedding = embedding,
            AttentionNorm = Ones(),
            Wq = PerLayer(c.Dim * c.Dim, 2 * w),
            Wk = PerLayer(c.KvDim * c.Dim, 2 * w),
            Wv = PerLayer(c.KvDim * c.Dim, w),
            Wo = PerLayer(c.Dim * c.Dim, w),
            FfnNorm = Ones(),
            W1 = PerLayer(c.HiddenDim * c.Dim, w),
            W2 = PerLayer(c.Dim * c.HiddenDim, 1f / MathF.Sqrt(c.HiddenDim)),
            W3 = PerLayer(c.HiddenDim * c.Dim, w),
            FinalNorm = Enumerable.Repeat(1f, c.Dim).ToArray(),
            FreqCisReal = real,
            FreqCisImag = imag,
            // Untied: with random weights a tied classifier mostly echoes the last token.
            Classifier = Random(c.Vocab * c.Dim, 1f),
        };
    }
}
