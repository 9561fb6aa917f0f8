using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation.Backends;
using OnnxAttention.Host.Swapped;
using OnnxAttention.Operators.Registration;

namespace OnnxAttention.Host.Generation;

/// <summary>
/// A decoder with its attention swapped, ready for <see cref="Generator"/>: the model's contract (ids, logits, state
/// tensors), read once from the swapped graph, and a session of some kind that opens an <see cref="ISessionBackend"/>
/// per generator. <see cref="DecoderModel"/> runs on the managed binding, <c>NativeRuntime.NativeDecoder</c> on an
/// ORT library through its C API.
/// </summary>
public abstract class SwappedDecoder : IDisposable
{
    protected SwappedDecoder(ModelProto swapped, SwapReport report, string source)
    {
        Info = SwappedModelInfo.From(swapped);
        InPlaceStates = StatesUpdatableInPlace(swapped, Info);
        Report = report;
        Source = source;
        var logitsType = swapped.Graph.Output.First(o => o.Name == Info.LogitsOutput).Type.TensorType;
        // The generation loop binds and samples float32 logits; ORT would refuse another type only at the first
        // run, with a message about a bound buffer rather than the model.
        if (logitsType.ElemType != (int)TensorProto.Types.DataType.Float)
        {
            throw new InvalidDataException(
                $"the model's logits output '{Info.LogitsOutput}' is {((TensorProto.Types.DataType)logitsType.ElemType).ToString().ToLowerInvariant()}; "
                + "the generator reads float32 logits (end the graph with a Cast to float)");
        }
        var logits = logitsType.Shape.Dim;
        Vocab = logits.Count == 3 && logits[2].HasDimValue ? (int)logits[2].DimValue
            : throw new InvalidDataException($"the model's logits output '{Info.LogitsOutput}' does not declare a fixed vocabulary size");
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

    /// <summary>State bytes one sequence carries between steps, independent of its length (0 for a pure KV cache).</summary>
    public long StateBytesPerSequence => Info.State.Where(s => !s.Grows).Sum(s => s.ElementsPerRow) * sizeof(float);

    /// <summary>Bytes a growing state (KV cache) adds per token of a sequence; 0 when all state is fixed-size.</summary>
    public long CacheBytesPerToken => Info.State.Where(s => s.Grows)
        .Sum(s => s.TailShape.Where((_, i) => i + 1 != s.GrowingAxis).Aggregate(1L, (a, d) => a * d)) * sizeof(float);

    /// <summary>Which ONNX Runtime runs the session and how (one line for the CLI).</summary>
    public abstract string Runtime { get; }

    /// <summary>A backend on this decoder's session for one generator (which disposes it).</summary>
    public abstract ISessionBackend OpenBackend();

    public abstract void Dispose();

    private static HashSet<string> StatesUpdatableInPlace(ModelProto swapped, SwappedModelInfo info)
    {
        var nodes = swapped.Graph.Node;
        return info.State.Where(s => !s.Grows)
            .Where(s => nodes.Where(n => n.Input.Contains(s.Past)).ToList() is [var reader]
                        && reader.Domain == OperatorRegistry.Domain && reader.Output.Contains(s.Present)
                        && nodes.Count(n => n.Output.Contains(s.Present)) == 1)
            .Select(s => s.Past).ToHashSet();
    }
}
