using System.Runtime.InteropServices;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Registration;

namespace OnnxAttention.Operators.Native;

/// <summary>
/// The library's only export, the entry point ORT looks up in a custom-op library
/// (<c>RegisterCustomOpsLibrary_V2</c>, <c>RegisterCustomOpLibrary</c>, Python's <c>register_custom_ops_library</c>):
/// <c>OrtStatus* RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api)</c>.
/// </summary>
public static unsafe class NativeEntryPoint
{
    /// <summary>Every ORT defines CreateStatus in slot 0 of the version-1 table, so an old runtime can still be told why.</summary>
    private const uint FirstApiVersion = 1;

    [UnmanagedCallersOnly(EntryPoint = "RegisterCustomOps")]
    public static nint RegisterCustomOps(nint sessionOptions, nint apiBase)
    {
        // Nothing can be reported without a table to create the status with; ORT always passes one.
        if (apiBase == 0)
        {
            return 0;
        }
        OrtApi api = default;
        try
        {
            api = OrtApi.FromApiBase(apiBase);
            if (api.IsNull)
            {
                return RuntimeTooOld(apiBase);
            }
            OperatorRegistry.AddTo(api, sessionOptions);
            return 0;
        }
        catch (Exception e)
        {
            // An exception unwinding into ORT's frames would abort the host process.
            return StatusBoundary.ToStatus(api.IsNull ? FirstApi(apiBase) : api, e, "OnnxAttention RegisterCustomOps");
        }
    }

    private static OrtApi FirstApi(nint apiBase)
    {
        var getApi = (delegate* unmanaged<uint, nint>)((nint*)apiBase)[0];
        return new OrtApi(getApi(FirstApiVersion));
    }

    private static nint RuntimeTooOld(nint apiBase)
    {
        var getVersion = (delegate* unmanaged<nint>)((nint*)apiBase)[1];
        var version = Marshal.PtrToStringUTF8(getVersion()) ?? "unknown";
        return StatusBoundary.ToStatus(FirstApi(apiBase),
            new OrtException(OrtErrorCode.Fail,
                $"this ONNX Runtime ({version}) does not provide OrtApi version {OrtApi.RequiredVersion}; ONNX Runtime 1.24 or newer is needed"),
            "OnnxAttention RegisterCustomOps");
    }
}
