using System.Runtime.InteropServices;

namespace OnnxAttention.Operators.Cuda.Driver;

/// <summary>
/// One loaded CUDA driver library and the entry points we call, bound by their exported (versioned where CUDA
/// versions them, e.g. cuMemcpyDtoDAsync_v2) names with <see cref="NativeLibrary.GetExport"/>: no static import, so
/// this assembly loads on a machine without CUDA. Every call returns a CUresult, turned into a
/// <see cref="CudaException"/> naming the call by <see cref="Check"/>. Handles (CUcontext, CUmodule, CUfunction,
/// CUstream) are opaque pointers; CUdeviceptr is a 64-bit integer, carried as <see cref="nint"/> (64-bit only).
/// NOT RUN ON A GPU YET.
/// </summary>
public sealed unsafe class CudaDriverLibrary
{
    public const int AttributeMultiprocessorCount = 16;           // CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT
    public const int AttributeComputeCapabilityMajor = 75;        // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
    public const int AttributeComputeCapabilityMinor = 76;        // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
    public const int AttributeMaxSharedMemoryPerBlockOptin = 97;  // CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
    public const int FunctionAttributeMaxDynamicSharedBytes = 8;  // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES

    /// <summary>The exported names bound, in one place so a test can list them.</summary>
    public static IReadOnlyList<string> EntryPoints { get; } =
    [
        "cuInit", "cuGetErrorName", "cuGetErrorString", "cuCtxGetCurrent", "cuCtxSetCurrent", "cuCtxGetDevice", "cuStreamGetCtx",
        "cuDeviceGetAttribute",
        "cuModuleLoadData", "cuModuleGetFunction", "cuFuncSetAttribute", "cuLaunchKernel", "cuMemAllocAsync",
        "cuMemFreeAsync", "cuMemcpyDtoDAsync_v2", "cuMemsetD8Async",
    ];

    private readonly delegate* unmanaged<uint, int> _init;
    private readonly delegate* unmanaged<int, byte**, int> _getErrorName;
    private readonly delegate* unmanaged<int, byte**, int> _getErrorString;
    private readonly delegate* unmanaged<nint*, int> _ctxGetCurrent;
    private readonly delegate* unmanaged<nint, int> _ctxSetCurrent;
    private readonly delegate* unmanaged<nint, nint*, int> _streamGetCtx;
    private readonly delegate* unmanaged<int*, int> _ctxGetDevice;
    private readonly delegate* unmanaged<int*, int, int, int> _deviceGetAttribute;
    private readonly delegate* unmanaged<nint*, void*, int> _moduleLoadData;
    private readonly delegate* unmanaged<nint*, nint, byte*, int> _moduleGetFunction;
    private readonly delegate* unmanaged<nint, int, int, int> _funcSetAttribute;
    private readonly delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int> _launchKernel;
    private readonly delegate* unmanaged<nint*, nuint, nint, int> _memAllocAsync;
    private readonly delegate* unmanaged<nint, nint, int> _memFreeAsync;
    private readonly delegate* unmanaged<nint, nint, nuint, nint, int> _memcpyDtoDAsync;
    private readonly delegate* unmanaged<nint, byte, nuint, nint, int> _memsetD8Async;

    // Kept for as long as this object calls the exports (the driver stays loaded while it is reachable).
    private readonly NativeLibraryHandle _library;

    private CudaDriverLibrary(string name, NativeLibraryHandle library)
    {
        Name = name;
        _library = library;
        _init = (delegate* unmanaged<uint, int>)library.Export("cuInit");
        _getErrorName = (delegate* unmanaged<int, byte**, int>)library.Export("cuGetErrorName");
        _getErrorString = (delegate* unmanaged<int, byte**, int>)library.Export("cuGetErrorString");
        _ctxGetCurrent = (delegate* unmanaged<nint*, int>)library.Export("cuCtxGetCurrent");
        _ctxSetCurrent = (delegate* unmanaged<nint, int>)library.Export("cuCtxSetCurrent");
        _streamGetCtx = (delegate* unmanaged<nint, nint*, int>)library.Export("cuStreamGetCtx");
        _ctxGetDevice = (delegate* unmanaged<int*, int>)library.Export("cuCtxGetDevice");
        _deviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)library.Export("cuDeviceGetAttribute");
        _moduleLoadData = (delegate* unmanaged<nint*, void*, int>)library.Export("cuModuleLoadData");
        _moduleGetFunction = (delegate* unmanaged<nint*, nint, byte*, int>)library.Export("cuModuleGetFunction");
        _funcSetAttribute = (delegate* unmanaged<nint, int, int, int>)library.Export("cuFuncSetAttribute");
        _launchKernel = (delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int>)library.Export("cuLaunchKernel");
        _memAllocAsync = (delegate* unmanaged<nint*, nuint, nint, int>)library.Export("cuMemAllocAsync");
        _memFreeAsync = (delegate* unmanaged<nint, nint, int>)library.Export("cuMemFreeAsync");
        _memcpyDtoDAsync = (delegate* unmanaged<nint, nint, nuint, nint, int>)library.Export("cuMemcpyDtoDAsync_v2");
        _memsetD8Async = (delegate* unmanaged<nint, byte, nuint, nint, int>)library.Export("cuMemsetD8Async");
        // ORT's CUDA execution provider has initialised the driver through the runtime API already; cuInit is
        // idempotent and makes the binding usable on its own.
        Check(_init(0), "cuInit");
    }

    /// <summary>The file name or path the library was loaded by.</summary>
    public string Name { get; }

    /// <summary>Loads <paramref name="path"/> as the driver; null with a reason when it does not load or lacks an entry point.</summary>
    public static CudaDriverLibrary? TryLoad(string path, out string failure)
    {
        var library = NativeLibraryHandle.TryLoad(path);
        if (library is null)
        {
            failure = $"{path}: not found or not loadable";
            return null;
        }
        try
        {
            failure = "";
            return new CudaDriverLibrary(path, library);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or CudaException)
        {
            library.Dispose();
            failure = $"{path}: {e.Message}";
            return null;
        }
    }

    /// <summary>Throws <see cref="CudaException"/> naming <paramref name="call"/> unless <paramref name="result"/> is CUDA_SUCCESS.</summary>
    public void Check(int result, string call)
    {
        if (result != 0)
        {
            throw new CudaException(call, result, Describe(_getErrorName, result, "CUDA_ERROR_UNKNOWN_CODE"),
                Describe(_getErrorString, result, "no description"));
        }
    }

    /// <summary>
    /// The context work for <paramref name="stream"/> must run in, made current on the calling thread: the stream's
    /// own context (cuStreamGetCtx), since ORT's thread may not have touched the CUDA runtime yet (the runtime makes
    /// the primary context current lazily); for the default stream (0), the context already current.
    /// </summary>
    public nint ContextFor(nint stream)
    {
        nint current;
        Check(_ctxGetCurrent(&current), "cuCtxGetCurrent");
        if (stream == 0)
        {
            if (current == 0)
            {
                throw new InvalidOperationException(
                    "no CUDA context is current on this thread and ORT gave no stream: CUDA kernels run only inside ORT's CUDA execution provider");
            }
            return current;
        }
        nint context;
        Check(_streamGetCtx(stream, &context), "cuStreamGetCtx");
        if (context != current)
        {
            Check(_ctxSetCurrent(context), "cuCtxSetCurrent");
        }
        return context;
    }

    /// <summary>An attribute (CU_DEVICE_ATTRIBUTE_*) of the current context's device.</summary>
    public int DeviceAttribute(int attribute)
    {
        int device, value;
        Check(_ctxGetDevice(&device), "cuCtxGetDevice");
        Check(_deviceGetAttribute(&value, attribute, device), "cuDeviceGetAttribute");
        return value;
    }

    /// <summary>Loads PTX text into the current context (the driver JIT-compiles it for the device).</summary>
    public nint LoadModule(string ptx)
    {
        var text = Marshal.StringToCoTaskMemUTF8(ptx);
        try
        {
            nint module;
            Check(_moduleLoadData(&module, (void*)text), "cuModuleLoadData");
            return module;
        }
        finally
        {
            Marshal.FreeCoTaskMem(text);
        }
    }

    public nint GetFunction(nint module, string entryPoint)
    {
        var name = Marshal.StringToCoTaskMemUTF8(entryPoint);
        try
        {
            nint function;
            Check(_moduleGetFunction(&function, module, (byte*)name), $"cuModuleGetFunction({entryPoint})");
            return function;
        }
        finally
        {
            Marshal.FreeCoTaskMem(name);
        }
    }

    /// <summary>Raises a function's dynamic shared memory limit (needed above 48 KiB).</summary>
    public void SetMaxDynamicSharedBytes(nint function, int bytes) =>
        Check(_funcSetAttribute(function, FunctionAttributeMaxDynamicSharedBytes, bytes), "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)");

    public void Launch(nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint sharedBytes, nint stream, void** arguments,
        string what) =>
        Check(_launchKernel(function, gridX, gridY, gridZ, blockX, 1, 1, sharedBytes, stream, arguments, null), $"cuLaunchKernel({what})");

    public nint AllocateAsync(long bytes, nint stream)
    {
        nint pointer;
        Check(_memAllocAsync(&pointer, (nuint)Math.Max(bytes, 1), stream), "cuMemAllocAsync");
        return pointer;
    }

    public void FreeAsync(nint pointer, nint stream) => Check(_memFreeAsync(pointer, stream), "cuMemFreeAsync");

    public void CopyAsync(nint destination, nint source, long bytes, nint stream) =>
        Check(_memcpyDtoDAsync(destination, source, (nuint)bytes, stream), "cuMemcpyDtoDAsync_v2");

    public void ZeroAsync(nint destination, long bytes, nint stream) =>
        Check(_memsetD8Async(destination, 0, (nuint)bytes, stream), "cuMemsetD8Async");


    private static string Describe(delegate* unmanaged<int, byte**, int> describe, int result, string fallback)
    {
        byte* text = null;
        return describe(result, &text) == 0 && text != null ? Marshal.PtrToStringUTF8((nint)text) ?? fallback : fallback;
    }
}
