using Microsoft.Win32.SafeHandles;

namespace OnnxAttention.Operators.Cuda;

/// <summary>
/// An nvrtcProgram we created: destroyed (nvrtcDestroyProgram) when disposed, or by the finalizer, never twice. It
/// holds a reference on its library's handle, so the library is not freed before the program is destroyed.
/// </summary>
internal sealed unsafe class NvrtcProgramHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    private readonly delegate* unmanaged<nint*, int> _destroy;
    private readonly NativeLibraryHandle _library;

    /// <summary>Takes ownership of <paramref name="program"/>, which nvrtcCreateProgram just created.</summary>
    public NvrtcProgramHandle(nint program, delegate* unmanaged<nint*, int> destroy, NativeLibraryHandle library) : base(ownsHandle: true)
    {
        _destroy = destroy;
        _library = library;
        var added = false;
        library.DangerousAddRef(ref added);
        SetHandle(program);
    }

    protected override bool ReleaseHandle()
    {
        var program = handle;
        // nvrtcDestroyProgram only fails for an invalid handle, which a SafeHandle never passes.
        _destroy(&program);
        _library.DangerousRelease();
        return true;
    }
}
