using Google.Protobuf;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Host.Swapped;

namespace OnnxAttention.Host.NativeRuntime;

/// <summary>
/// <see cref="DecoderModel"/>'s counterpart on the C-API path: the same loading and in-memory attention swap, but
/// its session is a <see cref="NativeSession"/> of an ORT library loaded by path (for example the 1.29 core that
/// can drive the CUDA plugin EP), not a managed InferenceSession.
/// </summary>
public sealed class NativeDecoder : IDisposable
{
    private NativeDecoder(ModelProto swapped, SwapReport report, OrtLibrary library, NativeSessionSettings settings, string source)
    {
        Info = SwappedModelInfo.From(swapped);
        InPlaceStates = DecoderModel.StatesUpdatableInPlace(swapped, Info);
        Report = report;
        Source = source;
        var logits = swapped.Graph.Output.First(o => o.Name == Info.LogitsOutput).Type.TensorType.Shape.Dim;
        Vocab = logits.Count == 3 && logits[2].HasDimValue ? (int)logits[2].DimValue
            : throw new InvalidDataException($"the model's logits output '{Info.LogitsOutput}' does not declare a fixed vocabulary size");
        Session = new NativeSession(library, swapped.ToByteArray(), settings);
    }

    public SwappedModelInfo Info { get; }

    /// <summary>As <see cref="DecoderModel.InPlaceStates"/>: fixed-size states one buffer can hold as past and present.</summary>
    public IReadOnlySet<string> InPlaceStates { get; }

    public SwapReport Report { get; }

    public string Source { get; }

    public int Vocab { get; }

    public NativeSession Session { get; }

    public long StateBytesPerSequence => Info.State.Where(s => !s.Grows).Sum(s => s.ElementsPerRow) * sizeof(float);

    public long CacheBytesPerToken => Info.State.Where(s => s.Grows)
        .Sum(s => s.TailShape.Where((_, i) => i + 1 != s.GrowingAxis).Aggregate(1L, (a, d) => a * d)) * sizeof(float);

    public static NativeDecoder FromExported(OrtLibrary library, ModelProto exported, AttentionRule rule, NativeSessionSettings settings, string source = "model")
    {
        var report = AttentionSwapper.Swap(exported, rule);
        return new NativeDecoder(exported, report, library, settings, source);
    }

    /// <summary>A .bin (llama2.c checkpoint) or .onnx (exported decoder) file; null: the built-in tiny Llama (<see cref="DecoderSource"/>).</summary>
    public static NativeDecoder Load(OrtLibrary library, string? path, AttentionRule rule, NativeSessionSettings settings)
    {
        var (model, source) = DecoderSource.Read(path);
        return FromExported(library, model, rule, settings, source);
    }

    /// <summary>The built-in tiny Llama with seeded weights (<see cref="DefaultCheckpoint"/>).</summary>
    public static NativeDecoder Default(OrtLibrary library, AttentionRule rule, NativeSessionSettings settings) =>
        Load(library, null, rule, settings);

    public void Dispose() => Session.Dispose();
}
