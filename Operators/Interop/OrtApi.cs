using System.Runtime.InteropServices;

namespace OnnxAttention.Operators.Interop;

/// <summary>
/// A typed view of ORT's <c>OrtApi</c> function table. Each method reads one slot and calls it with the C
/// signature from onnxruntime_c_api.h; statuses are returned raw so callers decide between throwing
/// (<see cref="StatusBoundary.ThrowIfError"/>) and passing them on.
/// </summary>
public readonly unsafe struct OrtApi
{
    private readonly nint* _table;

    public OrtApi(nint table) => _table = (nint*)table;

    public nint Handle => (nint)_table;

    /// <summary>The OrtApi version we request (the lowest with every slot we call; ONNX Runtime 1.24).</summary>
    public const uint RequiredVersion = OrtNative.ApiVersion;

    public bool IsNull => _table == null;

    private nint Slot(OrtApiSlot slot) => _table[(int)slot];

    /// <summary>The table of the onnxruntime library loaded in this process.</summary>
    public static OrtApi FromLoadedRuntime()
    {
        var apiBase = (nint*)OrtNative.OrtGetApiBase();
        var getApi = (delegate* unmanaged<uint, nint>)apiBase[0];
        var table = getApi(OrtNative.ApiVersion);
        if (table == 0)
        {
            throw new InvalidOperationException(
                $"The loaded ONNX Runtime does not provide API version {OrtNative.ApiVersion} (ONNX Runtime 1.24 or newer is needed).");
        }
        return new OrtApi(table);
    }

    /// <summary>The table handed over by a host through an <c>OrtApiBase*</c> (NativeAOT entry point); IsNull when too old.</summary>
    public static OrtApi FromApiBase(nint apiBase)
    {
        var getApi = (delegate* unmanaged<uint, nint>)((nint*)apiBase)[0];
        return new OrtApi(getApi(OrtNative.ApiVersion));
    }

    // ---- Status ----

    public nint CreateStatus(OrtErrorCode code, string message)
    {
        var utf8 = Marshal.StringToCoTaskMemUTF8(message);
        try
        {
            // ORT copies the message, so the buffer can go straight away.
            return ((delegate* unmanaged<int, byte*, nint>)Slot(OrtApiSlot.CreateStatus))((int)code, (byte*)utf8);
        }
        finally
        {
            Marshal.FreeCoTaskMem(utf8);
        }
    }

    public OrtErrorCode GetErrorCode(nint status) =>
        (OrtErrorCode)((delegate* unmanaged<nint, int>)Slot(OrtApiSlot.GetErrorCode))(status);

    public string GetErrorMessage(nint status) =>
        Marshal.PtrToStringUTF8(((delegate* unmanaged<nint, nint>)Slot(OrtApiSlot.GetErrorMessage))(status)) ?? "";

    public void ReleaseStatus(nint status) => ((delegate* unmanaged<nint, void>)Slot(OrtApiSlot.ReleaseStatus))(status);

    // ---- Custom-op domains ----

    public nint CreateCustomOpDomain(byte* domain, nint* outDomain) =>
        ((delegate* unmanaged<byte*, nint*, nint>)Slot(OrtApiSlot.CreateCustomOpDomain))(domain, outDomain);

    public nint CustomOpDomainAdd(nint domain, nint op) =>
        ((delegate* unmanaged<nint, nint, nint>)Slot(OrtApiSlot.CustomOpDomain_Add))(domain, op);

    public nint AddCustomOpDomain(nint sessionOptions, nint domain) =>
        ((delegate* unmanaged<nint, nint, nint>)Slot(OrtApiSlot.AddCustomOpDomain))(sessionOptions, domain);

    public void ReleaseCustomOpDomain(nint domain) =>
        ((delegate* unmanaged<nint, void>)Slot(OrtApiSlot.ReleaseCustomOpDomain))(domain);

    // ---- Kernel info (attributes) ----

    public nint KernelInfoGetAttributeFloat(nint info, byte* name, float* value) =>
        ((delegate* unmanaged<nint, byte*, float*, nint>)Slot(OrtApiSlot.KernelInfoGetAttribute_float))(info, name, value);

    public nint KernelInfoGetAttributeInt64(nint info, byte* name, long* value) =>
        ((delegate* unmanaged<nint, byte*, long*, nint>)Slot(OrtApiSlot.KernelInfoGetAttribute_int64))(info, name, value);

    public nint KernelInfoGetAttributeString(nint info, byte* name, byte* value, nuint* size) =>
        ((delegate* unmanaged<nint, byte*, byte*, nuint*, nint>)Slot(OrtApiSlot.KernelInfoGetAttribute_string))(info, name, value, size);

    public nint KernelInfoGetNodeName(nint info, byte* value, nuint* size) =>
        ((delegate* unmanaged<nint, byte*, nuint*, nint>)Slot(OrtApiSlot.KernelInfo_GetNodeName))(info, value, size);

    // ---- Kernel context ----

    public nint KernelContextGetInputCount(nint context, nuint* count) =>
        ((delegate* unmanaged<nint, nuint*, nint>)Slot(OrtApiSlot.KernelContext_GetInputCount))(context, count);

    public nint KernelContextGetOutputCount(nint context, nuint* count) =>
        ((delegate* unmanaged<nint, nuint*, nint>)Slot(OrtApiSlot.KernelContext_GetOutputCount))(context, count);

    public nint KernelContextGetInput(nint context, nuint index, nint* value) =>
        ((delegate* unmanaged<nint, nuint, nint*, nint>)Slot(OrtApiSlot.KernelContext_GetInput))(context, index, value);

    public nint KernelContextGetOutput(nint context, nuint index, long* dims, nuint dimCount, nint* value) =>
        ((delegate* unmanaged<nint, nuint, long*, nuint, nint*, nint>)Slot(OrtApiSlot.KernelContext_GetOutput))(context, index, dims, dimCount, value);

    public nint KernelContextParallelFor(nint context, delegate* unmanaged<void*, nuint, void> fn, nuint total, nuint numBatch, void* userData) =>
        ((delegate* unmanaged<nint, delegate* unmanaged<void*, nuint, void>, nuint, nuint, void*, nint>)Slot(OrtApiSlot.KernelContext_ParallelFor))(context, fn, total, numBatch, userData);

    // ---- Tensors ----

    public nint GetTensorData(nint value, void** data) =>
        ((delegate* unmanaged<nint, void**, nint>)Slot(OrtApiSlot.GetTensorData))(value, data);

    public nint GetTensorMutableData(nint value, void** data) =>
        ((delegate* unmanaged<nint, void**, nint>)Slot(OrtApiSlot.GetTensorMutableData))(value, data);

    public nint GetTensorElementTypeAndShapeDataReference(nint value, int* elementType, long** dims, nuint* dimCount) =>
        ((delegate* unmanaged<nint, int*, long**, nuint*, nint>)Slot(OrtApiSlot.GetTensorElementTypeAndShapeDataReference))(value, elementType, dims, dimCount);

    /// <summary>The execution provider's compute stream for this call (a cudaStream_t on the CUDA EP; null on CPU).</summary>
    public nint KernelContextGetGpuComputeStream(nint context, nint* stream) =>
        ((delegate* unmanaged<nint, nint*, nint>)Slot(OrtApiSlot.KernelContext_GetGPUComputeStream))(context, stream);
}
