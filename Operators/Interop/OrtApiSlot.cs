namespace OnnxAttention.Operators.Interop;

/// <summary>
/// Positions of the OrtApi function-table members this project calls (counted in ONNX Runtime 1.31.1's header, rechecked in 1.32.0's).
/// The table only ever grows at the end, so a slot number stays valid for every later runtime; the newest slot we
/// use (414) exists from API version 24 on, which is what we request (<see cref="OrtNative.ApiVersion"/>).
/// <c>Tests/Interop/OrtApiSlotHeaderTests</c> recounts them from the C header shipped in the NuGet package.
/// </summary>
public enum OrtApiSlot
{
    CreateStatus = 0,
    GetErrorCode = 1,
    GetErrorMessage = 2,
    CreateCustomOpDomain = 26,
    CustomOpDomain_Add = 27,
    AddCustomOpDomain = 28,
    GetTensorMutableData = 51,
    KernelInfoGetAttribute_float = 85,
    KernelInfoGetAttribute_int64 = 86,
    KernelInfoGetAttribute_string = 87,
    KernelContext_GetInputCount = 88,
    KernelContext_GetOutputCount = 89,
    KernelContext_GetInput = 90,
    KernelContext_GetOutput = 91,
    ReleaseStatus = 93,
    ReleaseCustomOpDomain = 101,
    KernelInfo_GetInputCount = 230,
    KernelInfo_GetOutputCount = 231,
    KernelInfo_GetNodeName = 244,
    KernelContext_ParallelFor = 274,
    GetTensorData = 378,
    GetTensorElementTypeAndShapeDataReference = 414,
    KernelContext_GetGPUComputeStream = 193,
}
