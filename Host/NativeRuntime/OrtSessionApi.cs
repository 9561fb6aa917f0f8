using System.Runtime.InteropServices;
using System.Text;
using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Host.NativeRuntime;

/// <summary>
/// The session side of an OrtApi table obtained from a library loaded by path (<see cref="OrtLibrary"/>), with the C
/// signatures of onnxruntime_c_api.h. Every status-returning call is checked: a failure throws
/// <see cref="OrtException"/> with ORT's code and message. Handles are raw <c>nint</c>s; the wrappers in this folder
/// own and release them.
/// </summary>
public readonly unsafe struct OrtSessionApi
{
    private readonly nint* _table;

    public OrtSessionApi(nint table) => _table = (nint*)table;

    /// <summary>The same table seen by the operator runtime (statuses, custom-op domains, kernel callbacks).</summary>
    public OrtApi Operators => new((nint)_table);

    private nint Slot(OrtSessionApiSlot slot) => _table[(int)slot];

    private void Check(nint status) => StatusBoundary.ThrowIfError(Operators, status);

    internal static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s + "\0");

    // ---- Environment, options, sessions ----

    public nint CreateEnv(int logSeverity, string logId)
    {
        nint env = 0;
        fixed (byte* id = Utf8(logId))
        {
            Check(((delegate* unmanaged<int, byte*, nint*, nint>)Slot(OrtSessionApiSlot.CreateEnv))(logSeverity, id, &env));
        }
        return env;
    }

    public void ReleaseEnv(nint env) => ((delegate* unmanaged<nint, void>)Slot(OrtSessionApiSlot.ReleaseEnv))(env);

    public nint CreateSessionOptions()
    {
        nint options = 0;
        Check(((delegate* unmanaged<nint*, nint>)Slot(OrtSessionApiSlot.CreateSessionOptions))(&options));
        return options;
    }

    public void SetIntraOpNumThreads(nint options, int threads) =>
        Check(((delegate* unmanaged<nint, int, nint>)Slot(OrtSessionApiSlot.SetIntraOpNumThreads))(options, threads));

    public void SetSessionLogSeverityLevel(nint options, int level) =>
        Check(((delegate* unmanaged<nint, int, nint>)Slot(OrtSessionApiSlot.SetSessionLogSeverityLevel))(options, level));

    public void ReleaseSessionOptions(nint options) =>
        ((delegate* unmanaged<nint, void>)Slot(OrtSessionApiSlot.ReleaseSessionOptions))(options);

    public nint CreateSessionFromArray(nint env, ReadOnlySpan<byte> model, nint options)
    {
        nint session = 0;
        fixed (byte* data = model)
        {
            Check(((delegate* unmanaged<nint, byte*, nuint, nint, nint*, nint>)Slot(OrtSessionApiSlot.CreateSessionFromArray))(
                env, data, (nuint)model.Length, options, &session));
        }
        return session;
    }

    public void ReleaseSession(nint session) => ((delegate* unmanaged<nint, void>)Slot(OrtSessionApiSlot.ReleaseSession))(session);

    public nint CreateRunOptions()
    {
        nint options = 0;
        Check(((delegate* unmanaged<nint*, nint>)Slot(OrtSessionApiSlot.CreateRunOptions))(&options));
        return options;
    }

    public void ReleaseRunOptions(nint options) => ((delegate* unmanaged<nint, void>)Slot(OrtSessionApiSlot.ReleaseRunOptions))(options);

    // ---- Memory info and allocators ----

    public nint CreateCpuMemoryInfo()
    {
        nint info = 0;
        // OrtDeviceAllocator (0), OrtMemTypeDefault (0).
        Check(((delegate* unmanaged<int, int, nint*, nint>)Slot(OrtSessionApiSlot.CreateCpuMemoryInfo))(0, 0, &info));
        return info;
    }

    /// <summary>Memory info of a device by its ORT name ("Cuda", "Cpu"), device allocator, default memory type.</summary>
    public nint CreateMemoryInfo(string name, int deviceId)
    {
        nint info = 0;
        fixed (byte* n = Utf8(name))
        {
            Check(((delegate* unmanaged<byte*, int, int, int, nint*, nint>)Slot(OrtSessionApiSlot.CreateMemoryInfo))(n, 0, deviceId, 0, &info));
        }
        return info;
    }

    public string MemoryInfoGetName(nint info)
    {
        byte* name = null;
        Check(((delegate* unmanaged<nint, byte**, nint>)Slot(OrtSessionApiSlot.MemoryInfoGetName))(info, &name));
        return Marshal.PtrToStringUTF8((nint)name) ?? "";
    }

    public void ReleaseMemoryInfo(nint info) => ((delegate* unmanaged<nint, void>)Slot(OrtSessionApiSlot.ReleaseMemoryInfo))(info);

    /// <summary>The session's allocator for a memory info (device memory on a GPU EP).</summary>
    public nint CreateAllocator(nint session, nint memoryInfo)
    {
        nint allocator = 0;
        Check(((delegate* unmanaged<nint, nint, nint*, nint>)Slot(OrtSessionApiSlot.CreateAllocator))(session, memoryInfo, &allocator));
        return allocator;
    }

    public void ReleaseAllocator(nint allocator) => ((delegate* unmanaged<nint, void>)Slot(OrtSessionApiSlot.ReleaseAllocator))(allocator);

    /// <summary>The process-wide CPU allocator; never released.</summary>
    public nint GetAllocatorWithDefaultOptions()
    {
        nint allocator = 0;
        Check(((delegate* unmanaged<nint*, nint>)Slot(OrtSessionApiSlot.GetAllocatorWithDefaultOptions))(&allocator));
        return allocator;
    }

    public void AllocatorFree(nint allocator, void* p) =>
        Check(((delegate* unmanaged<nint, void*, nint>)Slot(OrtSessionApiSlot.AllocatorFree))(allocator, p));

    // ---- Values ----

    public nint CreateTensor(nint allocator, ReadOnlySpan<long> shape, OrtElementType type)
    {
        nint value = 0;
        fixed (long* dims = shape)
        {
            Check(((delegate* unmanaged<nint, long*, nuint, int, nint*, nint>)Slot(OrtSessionApiSlot.CreateTensorAsOrtValue))(
                allocator, dims, (nuint)shape.Length, (int)type, &value));
        }
        return value;
    }

    /// <summary>A tensor over caller-owned memory, which must outlive the value and not move.</summary>
    public nint CreateTensorWithData(nint memoryInfo, void* data, nuint bytes, ReadOnlySpan<long> shape, OrtElementType type)
    {
        nint value = 0;
        fixed (long* dims = shape)
        {
            Check(((delegate* unmanaged<nint, void*, nuint, long*, nuint, int, nint*, nint>)Slot(OrtSessionApiSlot.CreateTensorWithDataAsOrtValue))(
                memoryInfo, data, bytes, dims, (nuint)shape.Length, (int)type, &value));
        }
        return value;
    }

    public void* GetTensorMutableData(nint value)
    {
        void* data = null;
        Check(((delegate* unmanaged<nint, void**, nint>)Slot(OrtSessionApiSlot.GetTensorMutableData))(value, &data));
        return data;
    }

    public long[] GetShape(nint value)
    {
        nint info = 0;
        Check(((delegate* unmanaged<nint, nint*, nint>)Slot(OrtSessionApiSlot.GetTensorTypeAndShape))(value, &info));
        try
        {
            nuint rank = 0;
            Check(((delegate* unmanaged<nint, nuint*, nint>)Slot(OrtSessionApiSlot.GetDimensionsCount))(info, &rank));
            var dims = new long[(int)rank];
            fixed (long* d = dims)
            {
                Check(((delegate* unmanaged<nint, long*, nuint, nint>)Slot(OrtSessionApiSlot.GetDimensions))(info, d, rank));
            }
            return dims;
        }
        finally
        {
            ((delegate* unmanaged<nint, void>)Slot(OrtSessionApiSlot.ReleaseTensorTypeAndShapeInfo))(info);
        }
    }

    public OrtElementType GetElementType(nint value)
    {
        nint info = 0;
        Check(((delegate* unmanaged<nint, nint*, nint>)Slot(OrtSessionApiSlot.GetTensorTypeAndShape))(value, &info));
        try
        {
            int type = 0;
            Check(((delegate* unmanaged<nint, int*, nint>)Slot(OrtSessionApiSlot.GetTensorElementType))(info, &type));
            return (OrtElementType)type;
        }
        finally
        {
            ((delegate* unmanaged<nint, void>)Slot(OrtSessionApiSlot.ReleaseTensorTypeAndShapeInfo))(info);
        }
    }

    public void ReleaseValue(nint value) => ((delegate* unmanaged<nint, void>)Slot(OrtSessionApiSlot.ReleaseValue))(value);

    // ---- IO binding ----

    public nint CreateIoBinding(nint session)
    {
        nint binding = 0;
        Check(((delegate* unmanaged<nint, nint*, nint>)Slot(OrtSessionApiSlot.CreateIoBinding))(session, &binding));
        return binding;
    }

    public void ReleaseIoBinding(nint binding) => ((delegate* unmanaged<nint, void>)Slot(OrtSessionApiSlot.ReleaseIoBinding))(binding);

    public void BindInput(nint binding, string name, nint value)
    {
        fixed (byte* n = Utf8(name))
        {
            Check(((delegate* unmanaged<nint, byte*, nint, nint>)Slot(OrtSessionApiSlot.BindInput))(binding, n, value));
        }
    }

    public void BindOutput(nint binding, string name, nint value)
    {
        fixed (byte* n = Utf8(name))
        {
            Check(((delegate* unmanaged<nint, byte*, nint, nint>)Slot(OrtSessionApiSlot.BindOutput))(binding, n, value));
        }
    }

    /// <summary>Lets ORT allocate the output on the device of <paramref name="memoryInfo"/> (for outputs whose shape changes).</summary>
    public void BindOutputToDevice(nint binding, string name, nint memoryInfo)
    {
        fixed (byte* n = Utf8(name))
        {
            Check(((delegate* unmanaged<nint, byte*, nint, nint>)Slot(OrtSessionApiSlot.BindOutputToDevice))(binding, n, memoryInfo));
        }
    }

    public void ClearBoundInputs(nint binding) => ((delegate* unmanaged<nint, void>)Slot(OrtSessionApiSlot.ClearBoundInputs))(binding);

    public void ClearBoundOutputs(nint binding) => ((delegate* unmanaged<nint, void>)Slot(OrtSessionApiSlot.ClearBoundOutputs))(binding);

    public void RunWithBinding(nint session, nint runOptions, nint binding) =>
        Check(((delegate* unmanaged<nint, nint, nint, nint>)Slot(OrtSessionApiSlot.RunWithBinding))(session, runOptions, binding));

    public void SynchronizeBoundOutputs(nint binding) =>
        Check(((delegate* unmanaged<nint, nint>)Slot(OrtSessionApiSlot.SynchronizeBoundOutputs))(binding));

    /// <summary>The bound outputs in binding order; the caller owns (releases) each value.</summary>
    public nint[] GetBoundOutputValues(nint binding)
    {
        var allocator = GetAllocatorWithDefaultOptions();
        nint* values = null;
        nuint count = 0;
        Check(((delegate* unmanaged<nint, nint, nint**, nuint*, nint>)Slot(OrtSessionApiSlot.GetBoundOutputValues))(binding, allocator, &values, &count));
        if (values == null)
        {
            return [];
        }
        var result = new ReadOnlySpan<nint>(values, (int)count).ToArray();
        AllocatorFree(allocator, values);
        return result;
    }

    // ---- Execution providers ----

    public void RegisterExecutionProviderLibrary(nint env, string registrationName, string path)
    {
        fixed (byte* n = Utf8(registrationName))
        fixed (byte* p = Utf8(path))
        {
            Check(((delegate* unmanaged<nint, byte*, byte*, nint>)Slot(OrtSessionApiSlot.RegisterExecutionProviderLibrary))(env, n, p));
        }
    }

    public void UnregisterExecutionProviderLibrary(nint env, string registrationName)
    {
        fixed (byte* n = Utf8(registrationName))
        {
            Check(((delegate* unmanaged<nint, byte*, nint>)Slot(OrtSessionApiSlot.UnregisterExecutionProviderLibrary))(env, n));
        }
    }

    /// <summary>The env's EP devices (owned by the env; valid while it and the registered libraries live).</summary>
    public nint[] GetEpDevices(nint env)
    {
        nint* devices = null;
        nuint count = 0;
        Check(((delegate* unmanaged<nint, nint**, nuint*, nint>)Slot(OrtSessionApiSlot.GetEpDevices))(env, &devices, &count));
        return devices == null ? [] : new ReadOnlySpan<nint>(devices, (int)count).ToArray();
    }

    public string EpDeviceEpName(nint device) =>
        Marshal.PtrToStringUTF8(((delegate* unmanaged<nint, nint>)Slot(OrtSessionApiSlot.EpDevice_EpName))(device)) ?? "";

    /// <summary>The device's default (device-resident) memory info, owned by the device; 0 when it has none.</summary>
    public nint EpDeviceMemoryInfo(nint device) =>
        ((delegate* unmanaged<nint, int, nint>)Slot(OrtSessionApiSlot.EpDevice_MemoryInfo))(device, 0);

    public void SessionOptionsAppendExecutionProviderV2(nint options, nint env, nint device,
        IReadOnlyList<KeyValuePair<string, string>> providerOptions)
    {
        using var keys = new Utf8Array(providerOptions.Select(p => p.Key));
        using var values = new Utf8Array(providerOptions.Select(p => p.Value));
        var one = device;
        Check(((delegate* unmanaged<nint, nint, nint*, nuint, byte**, byte**, nuint, nint>)Slot(OrtSessionApiSlot.SessionOptionsAppendExecutionProvider_V2))(
            options, env, &one, 1, keys.Pointers, values.Pointers, (nuint)providerOptions.Count));
    }

    /// <summary>The classic (in-tree) CUDA EP: CreateCUDAProviderOptions, UpdateCUDAProviderOptions, append, release.</summary>
    public void SessionOptionsAppendCudaV2(nint options, IReadOnlyList<KeyValuePair<string, string>> providerOptions)
    {
        nint cuda = 0;
        Check(((delegate* unmanaged<nint*, nint>)Slot(OrtSessionApiSlot.CreateCUDAProviderOptions))(&cuda));
        try
        {
            using var keys = new Utf8Array(providerOptions.Select(p => p.Key));
            using var values = new Utf8Array(providerOptions.Select(p => p.Value));
            Check(((delegate* unmanaged<nint, byte**, byte**, nuint, nint>)Slot(OrtSessionApiSlot.UpdateCUDAProviderOptions))(
                cuda, keys.Pointers, values.Pointers, (nuint)providerOptions.Count));
            Check(((delegate* unmanaged<nint, nint, nint>)Slot(OrtSessionApiSlot.SessionOptionsAppendExecutionProvider_CUDA_V2))(options, cuda));
        }
        finally
        {
            ((delegate* unmanaged<nint, void>)Slot(OrtSessionApiSlot.ReleaseCUDAProviderOptions))(cuda);
        }
    }

    /// <summary>NUL-terminated UTF-8 strings in native memory and an array of pointers to them (C's <c>const char* const*</c>).</summary>
    private sealed class Utf8Array : IDisposable
    {
        private readonly List<nint> _strings = [];

        public Utf8Array(IEnumerable<string> strings)
        {
            foreach (var s in strings)
            {
                _strings.Add(Marshal.StringToCoTaskMemUTF8(s));
            }
            Pointers = (byte**)NativeMemory.Alloc((nuint)Math.Max(1, _strings.Count), (nuint)sizeof(nint));
            for (var i = 0; i < _strings.Count; i++)
            {
                Pointers[i] = (byte*)_strings[i];
            }
        }

        public byte** Pointers { get; }

        public void Dispose()
        {
            foreach (var s in _strings)
            {
                Marshal.FreeCoTaskMem(s);
            }
            NativeMemory.Free(Pointers);
        }
    }
}
