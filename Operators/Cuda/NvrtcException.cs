namespace OnnxAttention.Operators.Cuda;

/// <summary>
/// NVRTC refused a call. For a failed compilation <see cref="Log"/> is NVRTC's program log (file, line and message
/// of every diagnostic), and the message ends with it, so the log line reaches whoever reads the exception.
/// </summary>
public sealed class NvrtcException : Exception
{
    public NvrtcException(string message, int result, string log)
        : base(log.Length == 0 ? message : message + Environment.NewLine + log)
    {
        Result = result;
        Log = log;
    }

    /// <summary>The nvrtcResult code (0 when the failure is ours, e.g. no usable architecture).</summary>
    public int Result { get; }

    /// <summary>The program log; empty when there was none.</summary>
    public string Log { get; }
}

/// <summary>No NVRTC library could be loaded (not installed, or too old); the message says what was tried.</summary>
public sealed class NvrtcUnavailableException(string message) : Exception(message);
