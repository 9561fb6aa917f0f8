using System.Runtime.InteropServices;

namespace OnnxAttention.Graphs.Llama2c;

/// <summary>
/// Weights of a llama2.c checkpoint (Karpathy's format): a 7-int32 header, then float32 arrays in a fixed order.
/// Matrices are stored [out, in] row-major, as llama2.c's matmul reads them.
/// </summary>
public sealed class Llama2cCheckpoint
{
    public required Llama2cConfig Config { get; init; }
    public required float[] TokenEmbedding { get; init; }    // [vocab, dim]
    public required float[][] AttentionNorm { get; init; }   // per layer [dim]
    public required float[][] Wq { get; init; }              // per layer [dim, dim]
    public required float[][] Wk { get; init; }              // per layer [kv_dim, dim]
    public required float[][] Wv { get; init; }              // per layer [kv_dim, dim]
    public required float[][] Wo { get; init; }              // per layer [dim, dim]
    public required float[][] FfnNorm { get; init; }         // per layer [dim]
    public required float[][] W1 { get; init; }              // per layer [hidden, dim]
    public required float[][] W2 { get; init; }              // per layer [dim, hidden]
    public required float[][] W3 { get; init; }              // per layer [hidden, dim]
    public required float[] FinalNorm { get; init; }         // [dim]
    public required float[] FreqCisReal { get; init; }       // [max_seq, head_size/2]
    public required float[] FreqCisImag { get; init; }       // [max_seq, head_size/2]
    public required float[] Classifier { get; init; }        // [vocab, dim]

    public static Llama2cCheckpoint Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"llama2.c checkpoint '{path}' does not exist", path);
        return Parse(File.ReadAllBytes(path), path);
    }

    public static Llama2cCheckpoint Parse(ReadOnlySpan<byte> bytes, string what = "checkpoint")
    {
        if (bytes.Length < 28) throw new InvalidDataException($"{what}: {bytes.Length} bytes is too short for the 28-byte llama2.c header");
        var h = MemoryMarshal.Cast<byte, int>(bytes[..28]);
        var config = new Llama2cConfig(h[0], h[1], h[2], h[3], h[4], Math.Abs(h[5]), h[6], SharedClassifier: h[5] > 0);
        config.Validate();
        var floats = MemoryMarshal.Cast<byte, float>(bytes[28..]).ToArray();
        int d = config.Dim, hd = config.HiddenDim, l = config.Layers, kv = config.KvDim, v = config.Vocab, half = config.HeadSize / 2;
        long needed = (long)v * d + l * (2L * d + 2L * d * d + 2L * kv * d + 3L * hd * d) + d + 2L * config.MaxSequence * half
                      + (config.SharedClassifier ? 0 : (long)v * d);
        if (floats.Length != needed)
        {
            throw new InvalidDataException($"{what}: header {config} needs {needed} floats of weights, the file has {floats.Length}");
        }
        var offset = 0;
        float[] Take(int n)
        {
            var a = floats.AsSpan(offset, n).ToArray();
            offset += n;
            return a;
        }
        float[][] PerLayer(int n) => Enumerable.Range(0, l).Select(_ => Take(n)).ToArray();

        var embedding = Take(v * d);
        var attentionNorm = PerLayer(d);
        var wq = PerLayer(d * d);
        var wk = PerLayer(kv * d);
        var wv = PerLayer(kv * d);
        var wo = PerLayer(d * d);
        var ffnNorm = PerLayer(d);
        var w1 = PerLayer(hd * d);
        var w2 = PerLayer(d * hd);
        var w3 = PerLayer(hd * d);
        var finalNorm = Take(d);
        var real = Take(config.MaxSequence * half);
        var imag = Take(config.MaxSequence * half);
        var classifier = config.SharedClassifier ? embedding : Take(v * d);
        return new Llama2cCheckpoint
        {
            Config = config,
            TokenEmbedding = embedding,
            AttentionNorm = attentionNorm,
            Wq = wq,
            Wk = wk,
            Wv = wv,
            Wo = wo,
            FfnNorm = ffnNorm,
            W1 = w1,
            W2 = w2,
            W3 = w3,
            FinalNorm = finalNorm,
            FreqCisReal = real,
            FreqCisImag = imag,
            Classifier = classifier,
        };
    }
}
