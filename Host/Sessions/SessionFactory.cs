using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.Registration;

namespace OnnxAttention.Host.Sessions;

/// <summary>Creates ORT sessions with the OnnxAttention operators registered.</summary>
public static class SessionFactory
{
    /// <summary>Session options with our operators registered; the caller disposes them after the session.</summary>
    public static SessionOptions CreateOptions(int intraOpThreads = 0) =>
        CreateOptions(intraOpThreads, options => options.RegisterOnnxAttentionOperators());

    /// <summary>
    /// Session options for <paramref name="target"/>: on the CPU our operators; on CUDA ORT's CUDA provider and our
    /// operators with their CUDA variants (GPU build; the CPU build refuses with <see cref="ExecutionProviderUnavailableException"/>).
    /// </summary>
    public static SessionOptions CreateOptions(int intraOpThreads, ExecutionTarget target) =>
        CreateOptions(intraOpThreads, options => Register(options, target));

    private static void Register(SessionOptions options, ExecutionTarget target)
    {
        if (target.IsCuda) CudaBuild.Configure(options, target.DeviceId);
        else options.RegisterOnnxAttentionOperators();
    }

    private static SessionOptions CreateOptions(int intraOpThreads, Action<SessionOptions> register)
    {
        // ORT would also log a failing node to stderr (in colour) before the exception that carries the same
        // message: the user gets it once, as the command's one-line error.
        var options = new SessionOptions { IntraOpNumThreads = intraOpThreads, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
        try
        {
            SessionMemory.Apply(options);
            register(options);
            return options;
        }
        catch
        {
            options.Dispose();
            throw;
        }
    }

    /// <summary>A session over an in-memory model; the options it was made with are disposed with it by <see cref="OwnedSession"/>.</summary>
    public static OwnedSession Create(ModelProto model, int intraOpThreads = 0) =>
        Create(model, intraOpThreads, options => options.RegisterOnnxAttentionOperators());

    /// <summary>A session on <paramref name="target"/> (see <see cref="CreateOptions(int, ExecutionTarget)"/>).</summary>
    public static OwnedSession Create(ModelProto model, int intraOpThreads, ExecutionTarget target)
    {
        try
        {
            return Create(model, intraOpThreads, options => Register(options, target));
        }
        catch (OnnxRuntimeException e) when (target.IsCuda && e.Message.Contains("CUDA", StringComparison.OrdinalIgnoreCase))
        {
            // The provider library loads at session creation: no driver, no device or missing CUDA libraries show here.
            throw CudaBuild.Unavailable(e);
        }
    }

    /// <summary>
    /// A session whose options <paramref name="register"/> gives the operators (tests and benchmarks register them with
    /// forced kernel forms); disposed like <see cref="Create(ModelProto, int)"/>.
    /// </summary>
    public static OwnedSession Create(ModelProto model, int intraOpThreads, Action<SessionOptions> register)
    {
        // Checked before ORT sees the model: what ORT would abort on or allocate without bound is refused here.
        SessionMemory.CheckModel(model);
        var options = CreateOptions(intraOpThreads, register);
        try
        {
            return new OwnedSession(new InferenceSession(model.ToByteArray(), options), options);
        }
        catch
        {
            options.Dispose();
            throw;
        }
    }
}

/// <summary>An InferenceSession together with the options it needs to outlive.</summary>
public sealed class OwnedSession(InferenceSession session, SessionOptions options) : IDisposable
{
    public InferenceSession Session { get; } = session;

    public void Dispose()
    {
        Session.Dispose();
        options.Dispose();
    }
}
