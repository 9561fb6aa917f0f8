using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace OnnxAttention.Operators.Cuda;

/// <summary>
/// A shared library we loaded (NVRTC, the CUDA driver): freed when disposed, or by the finalizer if its owner is
/// collected without disposing it, never twice. The owner keeps it for as long as it calls the library's exports.
/// </summary>
internal sealed class NativeLibraryHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    private NativeLibraryHandle(nint handle) : base(ownsHandle: true) => SetHandle(handle);

    /// <summary>The library at <paramref name="path"/>, or null when it does not load.</summary>
    public static NativeLibraryHandle? TryLoad(string path) =>
        NativeLibrary.TryLoad(path, out var handle) ? new NativeLibraryHandle(handle) : null;

    /// <summary>The address of export <paramref name="name"/>; throws <see cref="EntryPointNotFoundException"/> when absent.</summary>
    public nint Export(string name) => NativeLibrary.GetExport(handle, name);

    /// <summary>The address of export <paramref name="name"/>, or 0 when absent.</summary>
    public nint TryExport(string name) => NativeLibrary.TryGetExport(handle, name, out var address) ? address : 0;

    protected override bool ReleaseHandle()
    {
        NativeLibrary.Free(handle);
        return true;
    }
}
