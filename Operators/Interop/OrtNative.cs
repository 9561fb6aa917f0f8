using System.Runtime.InteropServices;

namespace OnnxAttention.Operators.Interop;

/// <summary>The one exported entry point of libonnxruntime; everything else goes through the OrtApi table.</summary>
internal static unsafe partial class OrtNative
{
    /// <summary>The API version whose table layout <see cref="OrtApiSlot"/> describes.</summary>
    public const uint ApiVersion = 31;

    // Resolves to the library the managed ORT binding already loaded (same process, same soname).
    [LibraryImport("onnxruntime")]
    internal static partial nint OrtGetApiBase();
}
