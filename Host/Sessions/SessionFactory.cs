using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.Registration;

namespace OnnxAttention.Host.Sessions;

/// <summary>Creates ORT sessions with the OnnxAttention operators registered.</summary>
public static class SessionFactory
{
    /// <summary>Session options with our operators registered; the caller disposes them after the session.</summary>
    public static SessionOptions CreateOptions(int intraOpThreads = 0)
    {
        // ORT would also log a failing node to stderr (in colour) before the exception that carries the same
        // message: the user gets it once, as the command's one-line error.
        var options = new SessionOptions { IntraOpNumThreads = intraOpThreads, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
        try
        {
            SessionMemory.Apply(options);
            options.RegisterOnnxAttentionOperators();
            return options;
        }
        catch
        {
            options.Dispose();
            throw;
        }
    }

    /// <summary>A session over an in-memory model; the options it was made with are disposed with it by <see cref="OwnedSession"/>.</summary>
    public static OwnedSession Create(ModelProto model, int intraOpThreads = 0)
    {
        // Checked before ORT sees the model: what ORT would abort on or allocate without bound is refused here.
        SessionMemory.CheckModel(model);
        var options = CreateOptions(intraOpThreads);
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
