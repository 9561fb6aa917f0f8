using System.Runtime.InteropServices;

namespace OnnxAttention.Operators.Interop;

/// <summary>The one exported entry point of libonnxruntime; everything else goes through the OrtApi table.</summary>
internal static unsafe partial class OrtNative
{
    /// <summary>
    /// The lowest OrtApi version with every slot we call (GetTensorElementTypeAndShapeDataReference arrived in 1.24),
    /// so any ONNX Runtime from 1.24 on can host our operators; newer runtimes return the same table for it.
    /// It is also the version our OrtCustomOp structs declare (16 or more selects the status-returning callbacks).
    /// </summary>
    public const uint ApiVersion = 24;

    // Resolves to the library the managed ORT binding already loaded (same process, same soname).
    [LibraryImport("onnxruntime")]
    internal static partial nint OrtGetApiBase();
}
