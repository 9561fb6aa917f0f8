using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Llama2c;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation.Backends;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Host.Generation;

/// <summary>
/// A decoder ready to generate on the managed binding: the model (llama2.c weights built into a graph, or an exported
/// ONNX decoder), its attention swapped in memory for the chosen rule, and one session that any number of generators
/// share.
/// </summary>
public sealed class DecoderModel : SwappedDecoder
{
    private readonly OwnedSession _session;

    private DecoderModel(ModelProto swapped, SwapReport report, int intraOpThreads, string source, ExecutionTarget? target = null) : base(swapped, report, source)
    {
        Target = target ?? ExecutionTarget.Cpu;
        _session = SessionFactory.Create(swapped, intraOpThreads, Target);
    }

    public InferenceSession Session => _session.Session;

    /// <summary>The execution provider the session runs on (state buffers live in its memory).</summary>
    public ExecutionTarget Target { get; }

    public override string Runtime =>
        $"ONNX Runtime {OrtEnv.Instance().GetVersionString()} through the managed binding on {(Target.IsCuda ? $"CUDA device {Target.DeviceId}" : "the CPU")}; state in {(Target.IsCuda ? "Cuda" : "Cpu")} memory";

    public override ISessionBackend OpenBackend() => new ManagedBackend(Session, Target);

    public static DecoderModel FromExported(ModelProto exported, AttentionRule rule, int intraOpThreads = 0, string source = "model", ExecutionTarget? target = null)
    {
        var report = AttentionSwapper.Swap(exported, rule);
        return new DecoderModel(exported, report, intraOpThreads, source, target);
    }

    /// <summary>
    /// A decoder already swapped by <see cref="AttentionSwapper.Swap"/> (and perhaps edited after it, e.g. to run
    /// its attention on 16-bit activations); <paramref name="report"/> is what that swap returned.
    /// </summary>
    public static DecoderModel FromSwapped(ModelProto swapped, SwapReport report, int intraOpThreads = 0, string source = "model") =>
        new(swapped, report, intraOpThreads, source);

    /// <summary>A .bin (llama2.c checkpoint) or .onnx (exported decoder) file.</summary>
    public static DecoderModel Load(string path, AttentionRule rule, int intraOpThreads = 0, ExecutionTarget? target = null)
    {
        var (model, source) = DecoderSource.Read(path);
        return FromExported(model, rule, intraOpThreads, source, target);
    }

    /// <summary>
    /// A model file already swapped (by convert or calibrate), run as it is. Its swap report is rebuilt from what
    /// the swap recorded in its metadata: the rule and the state; the matched attention is no longer there to list.
    /// </summary>
    public static DecoderModel LoadSwapped(ModelProto swapped, int intraOpThreads = 0, string source = "model", ExecutionTarget? target = null)
    {
        var info = ModelContract.Read(swapped);
        var report = new SwapReport(new RecordedRule(info.Rule), [], [], [], new Dictionary<string, int>(), 0, info.HasPositionInput) { PositionsPerRow = info.PositionsPerRow };
        return new DecoderModel(swapped, report, intraOpThreads, source, target);
    }

    /// <summary>The model the project builds itself: a small Llama with seeded weights (see <see cref="DefaultCheckpoint"/>).</summary>
    public static DecoderModel Default(AttentionRule rule, int intraOpThreads = 0, ExecutionTarget? target = null)
    {
        var (model, source) = DecoderSource.Read(null);
        return FromExported(model, rule, intraOpThreads, source, target);
    }

    /// <summary>A llama2.c checkpoint, in the form <see cref="DecoderSource.Build"/> writes (rows may be at different positions).</summary>
    public static DecoderModel FromCheckpoint(Llama2cCheckpoint checkpoint, AttentionRule rule, int intraOpThreads = 0, string source = "checkpoint") =>
        FromExported(DecoderSource.Build(checkpoint), rule, intraOpThreads, source);

    public override void Dispose() => _session.Dispose();
}
