namespace OnnxAttention.Operators.Interop;

/// <summary>
/// A failure that becomes an ORT status at the native boundary, keeping its error code.
/// Kernels throw it for bad inputs; <see cref="StatusBoundary"/> turns it into an OrtStatus.
/// </summary>
public sealed class OrtException(OrtErrorCode code, string message) : Exception(message)
{
    public OrtErrorCode Code { get; } = code;

    public static OrtException InvalidArgument(string message) => new(OrtErrorCode.InvalidArgument, message);
}
