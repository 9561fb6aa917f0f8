using OnnxAttention.Host.Generation;
using OnnxAttention.Host.Quality;

namespace OnnxAttention.Tests.Support;

/// <summary>
/// stories260K read once for every fixture that measures it: a <see cref="QualityModel"/> only reads its original
/// (each swap is of a copy), so one instance serves them all, also in parallel.
/// </summary>
public static class StoriesModel
{
    private static readonly Lazy<OnnxAttention.Graphs.Onnx.ModelProto> Graph = new(() => DecoderSource.Read(Llama2c.LlamaGraphTests.CheckpointPath).Model);
    private static readonly Lazy<QualityModel> OneThread = new(() => new QualityModel(Graph.Value, intraOpThreads: 1));
    private static readonly Lazy<QualityModel> OrtThreads = new(() => new QualityModel(Graph.Value));

    /// <summary>Run with one intra-op thread (small runs, several fixtures at a time).</summary>
    public static QualityModel Quality => OneThread.Value;

    /// <summary>Run with ORT's default intra-op threads.</summary>
    public static QualityModel QualityOnOrtThreads => OrtThreads.Value;

    /// <summary>Seeded ids in 1 .. 510 (no BOS, no token past the vocabulary), <paramref name="count"/> of them.</summary>
    public static long[] Ids(int seed, int count) => [.. Seeded.Uniform(seed, count, 1, 511).Select(x => (long)x)];
}
