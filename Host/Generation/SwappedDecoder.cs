using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation.Backends;

namespace OnnxAttention.Host.Generation;

/// <summary>
/// A decoder with its attention swapped, ready for <see cref="Generator"/>: the model's contract (ids, logits, state
/// tensors), read once from the swapped graph, and a session of some kind that opens an <see cref="ISessionBackend"/>
/// per generator. <see cref="DecoderModel"/> runs it on the managed binding, on the CPU or CUDA provider.
/// </summary>
public abstract class SwappedDecoder : IDisposable
{
    protected SwappedDecoder(ModelProto swapped, SwapReport report, string source)
    {
        // A float16 model's logits are sampled as float32: the session runs the model with a Cast at its end.
        FloatLogits.Apply(swapped);
        Info = ModelContract.Read(swapped);
        InPlaceStates = Info.State.Where(s => s.InPlace).Select(s => s.Past).ToHashSet();
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

    public ModelContract Info { get; }

    /// <summary>
    /// The past inputs of the state tensors that one buffer can hold as both past and present, as the swap recorded
    /// them (<see cref="StateEntry.InPlace"/>); the others keep two buffers.
    /// </summary>
    public IReadOnlySet<string> InPlaceStates { get; }

    public SwapReport Report { get; }

    public string Source { get; }

    public int Vocab { get; }

    /// <summary>State bytes one sequence carries between steps, independent of its length (0 for a pure KV cache).</summary>
    public long StateBytesPerSequence => checked(Info.State.Where(s => !s.Grows).Sum(s => s.BytesPerRow));

    /// <summary>Bytes a growing state (KV cache) adds per token of a sequence; 0 when all state is fixed-size.</summary>
    public long CacheBytesPerToken => checked(Info.State.Sum(s => s.BytesPerToken));

    /// <summary>Which ONNX Runtime runs the session and how (one line for the CLI).</summary>
    public abstract string Runtime { get; }

    /// <summary>A backend on this decoder's session for one generator (which disposes it).</summary>
    public abstract ISessionBackend OpenBackend();

    public abstract void Dispose();

}
