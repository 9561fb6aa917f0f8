using Google.Protobuf;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Host.Generation.Backends;

namespace OnnxAttention.Host.NativeRuntime;

/// <summary>
/// <see cref="DecoderModel"/>'s counterpart on the C-API path: the same loading and in-memory attention swap, but
/// its session is a <see cref="NativeSession"/> of an ORT library loaded by path (for example the 1.29 core that
/// can drive the CUDA plugin EP), not a managed InferenceSession. <see cref="Generator"/> runs on either.
/// </summary>
public sealed class NativeDecoder : SwappedDecoder
{
    private NativeDecoder(ModelProto swapped, SwapReport report, OrtLibrary library, NativeSessionSettings settings, string source)
        : base(swapped, report, source)
    {
        // The same static checks as managed sessions (SessionFactory): ORT's C API would abort or run away alike.
        Sessions.SessionMemory.CheckModel(swapped);
        Session = new NativeSession(library, swapped.ToByteArray(), settings);
    }

    public NativeSession Session { get; }

    public override string Runtime =>
        $"ONNX Runtime {Session.Library.Version} through its C API ({Session.Library.Path}); {Session.Settings.Provider}; state in {Session.DeviceMemoryName} memory";

    public override ISessionBackend OpenBackend() => new NativeBackend(Session);

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

    /// <summary>A llama2.c checkpoint, in the form <see cref="DecoderSource.Build"/> writes (rows may be at different positions).</summary>
    public static NativeDecoder FromCheckpoint(OrtLibrary library, Graphs.Llama2c.Llama2cCheckpoint checkpoint, AttentionRule rule, NativeSessionSettings settings,
        string source = "checkpoint") =>
        FromExported(library, DecoderSource.Build(checkpoint), rule, settings, source);

    public override void Dispose() => Session.Dispose();
}
