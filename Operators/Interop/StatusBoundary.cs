namespace OnnxAttention.Operators.Interop;

/// <summary>
/// The single place where managed failures and ORT statuses meet. Calls into ORT go through
/// <see cref="ThrowIfError"/>; every callback ORT makes into us ends in <see cref="ToStatus"/>, so no exception
/// ever unwinds into native frames (that aborts the process).
/// </summary>
public static class StatusBoundary
{
    /// <summary>Throws an <see cref="OrtException"/> carrying the status' code and message, releasing the status.</summary>
    public static void ThrowIfError(in OrtApi api, nint status)
    {
        if (status == 0)
        {
            return;
        }
        var code = api.GetErrorCode(status);
        var message = api.GetErrorMessage(status);
        api.ReleaseStatus(status);
        throw new OrtException(code, message);
    }

    /// <summary>Converts any exception into a new OrtStatus that ORT will own.</summary>
    public static nint ToStatus(in OrtApi api, Exception error, string where)
    {
        try
        {
            return error switch
            {
                OrtException ort => api.CreateStatus(ort.Code, $"{where}: {ort.Message}"),
                ArgumentException arg => api.CreateStatus(OrtErrorCode.InvalidArgument, $"{where}: {arg.Message}"),
                _ => api.CreateStatus(OrtErrorCode.RuntimeException, $"{where}: {error.GetType().Name}: {error.Message}"),
            };
        }
        catch
        {
            // Even building the message failed (out of memory): a bare status still reports the failure.
            return api.CreateStatus(OrtErrorCode.RuntimeException, "OnnxAttention: internal error");
        }
    }
}
