using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Llama2c;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Host.Swapped;
using OnnxAttention.Operators.Registration;

namespace OnnxAttention.Host.Generation;

/// <summary>
/// A decoder ready to generate: the model (llama2.c weights built into a graph, or an exported ONNX decoder), its
/// attention swapped in memory for the chosen rule, and one session that any number of generators share.
/// </summary>
public sealed class DecoderModel : IDisposable
{
    private readonly OwnedSession _session;

    private DecoderModel(ModelProto swapped, SwapReport report, int intraOpThreads, string source)
    {
        Info = SwappedModelInfo.From(swapped);
        InPlaceStates = StatesUpdatableInPlace(swapped, Info);
        Report = report;
        Source = source;
        var logits = swapped.Graph.Output.First(o => o.Name == Info.LogitsOutput).Type.TensorType.Shape.Dim;
        Vocab = logits.Count == 3 && logits[2].HasDimValue ? (int)logits[2].DimValue
            : throw new InvalidDataException($"the model's logits output '{Info.LogitsOutput}' does not declare a fixed vocabulary size");
        _session = SessionFactory.Create(swapped, intraOpThreads);
    }

    public SwappedModelInfo Info { get; }

    /// <summary>
    /// The past inputs of the state tensors that one buffer can hold as both past and present: fixed-size state read
    /// only by one of our operators, which also writes its present (our operators take the past in place when both
    /// are the same buffer). ORT's own operators promise nothing about aliased inputs and outputs, so a state they
    /// read or write keeps two buffers.
    /// </summary>
    public IReadOnlySet<string> InPlaceStates { get; }

    public SwapReport Report { get; }

    public string Source { get; }

    public int Vocab { get; }

    public InferenceSession Session => _session.Session;

    /// <summary>State bytes one sequence carries between steps, independent of its length (0 for a pure KV cache).</summary>
    public long StateBytesPerSequence => Info.State.Where(s => !s.Grows).Sum(s => s.ElementsPerRow) * sizeof(float);

    /// <summary>Bytes a growing state (KV cache) adds per token of a sequence; 0 when all state is fixed-size.</summary>
    public long CacheBytesPerToken => Info.State.Where(s => s.Grows)
        .Sum(s => s.TailShape.Where((_, i) => i + 1 != s.GrowingAxis).Aggregate(1L, (a, d) => a * d)) * sizeof(float);

    internal static HashSet<string> StatesUpdatableInPlace(ModelProto swapped, SwappedModelInfo info)
    {
        var nodes = swapped.Graph.Node;
        return info.State.Where(s => !s.Grows)
            .Where(s => nodes.Where(n => n.Input.Contains(s.Past)).ToList() is [var reader]
                        && reader.Domain == OperatorRegistry.Domain && reader.Output.Contains(s.Present)
                        && nodes.Count(n => n.Output.Contains(s.Present)) == 1)
            .Select(s => s.Past).ToHashSet();
    }

    public static DecoderModel FromExported(ModelProto exported, AttentionRule rule, int intraOpThreads = 0, string source = "model")
    {
        var report = AttentionSwapper.Swap(exported, rule);
        return new DecoderModel(exported, report, intraOpThreads, source);
    }

    /// <summary>A .bin (llama2.c checkpoint) or .onnx (exported decoder) file.</summary>
    public static DecoderModel Load(string path, AttentionRule rule, int intraOpThreads = 0)
    {
        var (model, source) = DecoderSource.Read(path);
        return FromExported(model, rule, intraOpThreads, source);
    }

    /// <summary>The model the project builds itself: a small Llama with seeded weights (see <see cref="DefaultCheckpoint"/>).</summary>
    public static DecoderModel Default(AttentionRule rule, int intraOpThreads = 0)
    {
        var (model, source) = DecoderSource.Read(null);
        return FromExported(model, rule, intraOpThreads, source);
    }

    /// <summary>A llama2.c checkpoint, in the form <see cref="DecoderSource.Build"/> writes (rows may be at different positions).</summary>
    public static DecoderModel FromCheckpoint(Llama2cCheckpoint checkpoint, AttentionRule rule, int intraOpThreads = 0, string source = "checkpoint") =>
        FromExported(DecoderSource.Build(checkpoint), rule, intraOpThreads, source);

    public void Dispose() => _session.Dispose();
}
