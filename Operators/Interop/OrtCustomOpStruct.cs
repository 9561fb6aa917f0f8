using System.Runtime.InteropServices;

namespace OnnxAttention.Operators.Interop;

/// <summary>
/// <c>struct OrtCustomOp</c> for ORT_API_VERSION 31: a 4-byte version, 4 bytes of padding, then 25 function
/// pointers (208 bytes). Default sequential layout reproduces the C padding; Pack=1 would not.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct OrtCustomOpStruct
{
    public uint Version;
    public delegate* unmanaged<nint, nint, nint, nint> CreateKernel;
    public delegate* unmanaged<nint, byte*> GetName;
    public delegate* unmanaged<nint, byte*> GetExecutionProviderType;
    public delegate* unmanaged<nint, nuint, int> GetInputType;
    public delegate* unmanaged<nint, nuint> GetInputTypeCount;
    public delegate* unmanaged<nint, nuint, int> GetOutputType;
    public delegate* unmanaged<nint, nuint> GetOutputTypeCount;
    public delegate* unmanaged<nint, nint, void> KernelCompute;
    public delegate* unmanaged<nint, void> KernelDestroy;
    public delegate* unmanaged<nint, nuint, int> GetInputCharacteristic;
    public delegate* unmanaged<nint, nuint, int> GetOutputCharacteristic;
    public delegate* unmanaged<nint, nuint, int> GetInputMemoryType;
    public delegate* unmanaged<nint, int> GetVariadicInputMinArity;
    public delegate* unmanaged<nint, int> GetVariadicInputHomogeneity;
    public delegate* unmanaged<nint, int> GetVariadicOutputMinArity;
    public delegate* unmanaged<nint, int> GetVariadicOutputHomogeneity;
    public delegate* unmanaged<nint, nint, nint, nint*, nint> CreateKernelV2;
    public delegate* unmanaged<nint, nint, nint> KernelComputeV2;
    public delegate* unmanaged<nint, nint, nint> InferOutputShapeFn;
    public delegate* unmanaged<nint, int> GetStartVersion;
    public delegate* unmanaged<nint, int> GetEndVersion;
    public delegate* unmanaged<int**, int**, nuint> GetMayInplace;
    public delegate* unmanaged<int*, int*, void> ReleaseMayInplace;
    public delegate* unmanaged<int**, int**, nuint> GetAliasMap;
    public delegate* unmanaged<int*, int*, void> ReleaseAliasMap;
}
