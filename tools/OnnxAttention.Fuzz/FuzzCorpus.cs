using OnnxAttention.Graphs.Llama2c;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Generation;

namespace OnnxAttention.Fuzz;

/// <summary>
/// The models mutations start from: tiny decoders built in C# (most cases: a case must cost milliseconds), the
/// exported fixture decoders and the hostile files (read raw, so a hostile file is also a seed as it is).
/// </summary>
public sealed class FuzzCorpus
{
    public sealed record Seed(string Name, ModelProto Model);

    private readonly List<Seed> _tiny = [];
    private readonly List<Seed> _fixtures = [];

    public IReadOnlyList<Seed> All => [.. _tiny, .. _fixtures];

    /// <summary>The corpus; <paramref name="fixtures"/> is the shared fixtures folder (holding exported-decoders/ and hostile/), or null for tiny seeds only.</summary>
    public static FuzzCorpus Build(string? fixtures)
    {
        var corpus = new FuzzCorpus();
        var configs = new[]
        {
            new Llama2cConfig(Dim: 8, HiddenDim: 16, Layers: 1, Heads: 2, KvHeads: 1, Vocab: 16, MaxSequence: 16, SharedClassifier: false),
            new Llama2cConfig(Dim: 8, HiddenDim: 12, Layers: 2, Heads: 2, KvHeads: 2, Vocab: 16, MaxSequence: 16, SharedClassifier: true),
        };
        var forms = new[]
        {
            ("plain", new LlamaGraphOptions()),
            ("kv", new LlamaGraphOptions { KvCache = true }),
            ("kv-positions", new LlamaGraphOptions { KvCache = true, PositionIdsInput = true }),
            ("kv-mask", new LlamaGraphOptions { KvCache = true, AttentionMaskInput = true }),
        };
        foreach (var (config, i) in configs.Select((c, i) => (c, i)))
        {
            var checkpoint = DefaultCheckpoint.Create(seed: 7 + i, config: config);
            foreach (var (name, options) in forms)
            {
                corpus._tiny.Add(new Seed($"tiny-{i}-{name}", LlamaGraphBuilder.Build(checkpoint, options)));
            }
        }
        if (fixtures is not null)
        {
            var files = new List<string>();
            var exported = Path.Combine(fixtures, "exported-decoders");
            if (Directory.Exists(exported)) files.AddRange(Directory.GetDirectories(exported).Select(d => Path.Combine(d, "model.onnx")).Where(File.Exists).Order());
            var hostile = Path.Combine(fixtures, "hostile");
            if (Directory.Exists(hostile)) files.AddRange(Directory.GetFiles(hostile, "*.onnx").Order());
            foreach (var f in files)
            {
                corpus._fixtures.Add(new Seed(Path.GetFileName(Path.GetDirectoryName(f)!) + "/" + Path.GetFileName(f), ModelProto.Parser.ParseFrom(File.ReadAllBytes(f))));
            }
        }
        return corpus;
    }

    /// <summary>A seed: a tiny decoder 85% of the time, else a fixture (they cost 10-100 times more per case).</summary>
    public Seed Pick(Random rng)
    {
        if (_fixtures.Count == 0 || rng.Next(100) >= 12) return _tiny[rng.Next(_tiny.Count)];
        // Fixtures over 2 MB (the 5,000-node chain, the 50,000-node model) cost seconds a case: 1 pick in 50.
        var seed = _fixtures[rng.Next(_fixtures.Count)];
        return seed.Model.CalculateSize() < 2_000_000 || rng.Next(50) == 0 ? seed : _tiny[rng.Next(_tiny.Count)];
    }

    /// <summary>The fixtures folder beside a checkout (../shared/fixtures), looked for from <paramref name="start"/> upwards.</summary>
    public static string? FindFixtures(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "fixtures");
            if (Directory.Exists(Path.Combine(candidate, "hostile"))) return candidate;
            var sibling = Path.Combine(dir.FullName, "..", "shared", "fixtures");
            if (Directory.Exists(Path.Combine(sibling, "hostile"))) return Path.GetFullPath(sibling);
        }
        return null;
    }
}
