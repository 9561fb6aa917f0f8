using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Llama2c;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Diagnostics;
using OnnxAttention.Host.Generation.Backends;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Host.Generation;

/// <summary>
/// A decoder ready to generate on the managed binding: the model (llama2.c weights built into a graph, or an exported
/// ONNX decoder), its attention swapped in memory for the chosen rule, and one session that any number of generators
/// share. Every factory returns the memory its load dropped (see <see cref="CompactAfterLoadBytes"/>).
/// </summary>
public sealed class DecoderModel : SwappedDecoder
{
    private readonly OwnedSession _session;

    private DecoderModel(ModelProto swapped, SwapReport report, int intraOpThreads, string source, ExecutionTarget? target = null) : base(swapped, report, source)
    {
        Target = target ?? ExecutionTarget.Cpu;
        ModelBytes = swapped.CalculateSize();
        _session = SessionFactory.Create(swapped, intraOpThreads, Target);
    }

    /// <summary>
    /// From this serialized size on, a factory ends with <see cref="ProcessMemory.Compact"/>. Loading leaves garbage of
    /// about three times the model (the file's protobuf, the serialized copy handed to ORT, the swap's copies), and
    /// a plain collection frees it without returning its pages: the 100M-parameter Llama's process stayed at 1.7 GB
    /// resident after loading, 0.5 GB after compacting. Small models skip the pause.
    /// </summary>
    public const long CompactAfterLoadBytes = 32L << 20;

    /// <summary>The serialized size of the swapped model the session was made from.</summary>
    public long ModelBytes { get; }

    public InferenceSession Session => _session.Session;

    /// <summary>The execution provider the session runs on (state buffers live in its memory).</summary>
    public ExecutionTarget Target { get; }

    public override string Runtime =>
        $"ONNX Runtime {OrtEnv.Instance().GetVersionString()} through the managed binding on {(Target.IsCuda ? $"CUDA device {Target.DeviceId}" : "the CPU")}; state in {(Target.IsCuda ? "Cuda" : "Cpu")} memory";

    public override ISessionBackend OpenBackend() => new ManagedBackend(Session, Target);

    /// <summary>
    /// The one place every factory returns through: once the session exists, what the load dropped goes back to the
    /// kernel. A model read inside <paramref name="load"/> is unreachable by then (only that lambda's frame held it);
    /// one the caller passed in stays the caller's, and only the Host's own copies go.
    /// </summary>
    private static DecoderModel Loaded(Func<DecoderModel> load)
    {
        var decoder = load();
        if (decoder.ModelBytes >= CompactAfterLoadBytes) ProcessMemory.Compact();
        return decoder;
    }

    private static DecoderModel Swapped(ModelProto exported, AttentionRule rule, int intraOpThreads, string source, ExecutionTarget? target) =>
        new(exported, AttentionSwapper.Swap(exported, rule), intraOpThreads, source, target);

    public static DecoderModel FromExported(ModelProto exported, AttentionRule rule, int intraOpThreads = 0, string source = "model", ExecutionTarget? target = null) =>
        Loaded(() => Swapped(exported, rule, intraOpThreads, source, target));

    /// <summary>
    /// The model <paramref name="read"/> gives, swapped for the rule <paramref name="ruleFor"/> picks for it, or run as
    /// it is (an already swapped model, see <see cref="LoadSwapped"/>) when that is null. Only this call holds the
    /// model, so its memory goes back once the session exists.
    /// </summary>
    public static DecoderModel Load(Func<(ModelProto Model, string Source)> read, Func<ModelProto, AttentionRule?> ruleFor, int intraOpThreads = 0, ExecutionTarget? target = null) =>
        Loaded(() =>
        {
            var (model, source) = read();
            return ruleFor(model) is { } rule ? Swapped(model, rule, intraOpThreads, source, target) : AsSwapped(model, intraOpThreads, source, target);
        });

    /// <summary>
    /// A decoder already swapped by <see cref="AttentionSwapper.Swap"/> (and perhaps edited after it, e.g. to run
    /// its attention on 16-bit activations); <paramref name="report"/> is what that swap returned.
    /// </summary>
    public static DecoderModel FromSwapped(ModelProto swapped, SwapReport report, int intraOpThreads = 0, string source = "model") =>
        Loaded(() => new DecoderModel(swapped, report, intraOpThreads, source));

    /// <summary>A .bin (llama2.c checkpoint) or .onnx (exported decoder) file.</summary>
    public static DecoderModel Load(string path, AttentionRule rule, int intraOpThreads = 0, ExecutionTarget? target = null) =>
        Load(() => DecoderSource.Read(path), _ => rule, intraOpThreads, target);

    /// <summary>
    /// A model file already swapped (by convert or calibrate), run as it is. Its swap report is rebuilt from what
    /// the swap recorded in its metadata: the rule and the state; the matched attention is no longer there to list.
    /// </summary>
    public static DecoderModel LoadSwapped(ModelProto swapped, int intraOpThreads = 0, string source = "model", ExecutionTarget? target = null) =>
        Loaded(() => AsSwapped(swapped, intraOpThreads, source, target));

    private static DecoderModel AsSwapped(ModelProto swapped, int intraOpThreads, string source, ExecutionTarget? target)
    {
        var info = ModelContract.Read(swapped);
        var report = new SwapReport(new RecordedRule(info.Rule), [], [], [], new Dictionary<string, int>(), 0, info.HasPositionInput) { PositionsPerRow = info.PositionsPerRow };
        return new DecoderModel(swapped, report, intraOpThreads, source, target);
    }

    /// <summary>The model the project builds itself: a small Llama with seeded weights (see <see cref="DefaultCheckpoint"/>).</summary>
    public static DecoderModel Default(AttentionRule rule, int intraOpThreads = 0, ExecutionTarget? target = null) =>
        Load(() => DecoderSource.Read(null), _ => rule, intraOpThreads, target);

    /// <summary>A llama2.c checkpoint, in the form <see cref="DecoderSource.Build"/> writes (rows may be at different positions).</summary>
    public static DecoderModel FromCheckpoint(Llama2cCheckpoint checkpoint, AttentionRule rule, int intraOpThreads = 0, string source = "checkpoint") =>
        Load(() => (DecoderSource.Build(checkpoint), source), _ => rule, intraOpThreads);

    public override void Dispose() => _session.Dispose();
}
