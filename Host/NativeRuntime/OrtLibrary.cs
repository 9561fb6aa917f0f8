using System.Runtime.InteropServices;
using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Host.NativeRuntime;

/// <summary>
/// An ONNX Runtime shared library loaded by path and driven through its C API, without the managed binding (which
/// asks for API version 31 and so cannot drive ORT 1.29, the core the CUDA plugin EP library is built for). The same
/// process may hold the managed binding's library too: each library has its own table, env and operator domain.
/// A loaded library is never unloaded (its sessions, env and our custom-op domain live in it).
/// </summary>
public sealed unsafe class OrtLibrary
{
    /// <summary>
    /// The OrtApi version asked for: the lowest that has every slot this path calls (EpDevice_MemoryInfo: 23) and that
    /// our operators, registered through the same table, need (<see cref="OrtApi.RequiredVersion"/>: 24).
    /// </summary>
    public const uint RequestedApiVersion = OrtApi.RequiredVersion;

    private static readonly Lock Gate = new();
    private static readonly Dictionary<nint, OrtLibrary> Loaded = [];

    private readonly Lock _envGate = new();
    private readonly Dictionary<string, string> _registeredEpLibraries = [];
    private nint _env;

    private OrtLibrary(string path, nint handle, nint apiBase, string version)
    {
        Path = path;
        Handle = handle;
        Version = version;
        var getApi = (delegate* unmanaged<uint, nint>)((nint*)apiBase)[0];
        var table = getApi(RequestedApiVersion);
        if (table == 0)
        {
            throw new InvalidOperationException(
                $"this ONNX Runtime ({version}, {path}) does not provide OrtApi version {RequestedApiVersion}; ONNX Runtime 1.24 or newer is needed");
        }
        Api = new OrtSessionApi(table);
    }

    /// <summary>The file it was loaded from.</summary>
    public string Path { get; }

    /// <summary>The dlopen handle; equal for two loads of the same file.</summary>
    public nint Handle { get; }

    /// <summary>ORT's own version string ("1.29.0").</summary>
    public string Version { get; }

    public OrtSessionApi Api { get; }

    /// <summary>
    /// Loads <paramref name="path"/> (a libonnxruntime.so). Loading the same file twice gives the same object; loading
    /// the file the managed binding uses gives that library (one ORT, one table).
    /// </summary>
    public static OrtLibrary Load(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new FileNotFoundException($"ONNX Runtime library not found: {full}", full);
        }
        nint handle;
        try
        {
            handle = NativeLibrary.Load(full);
        }
        catch (DllNotFoundException e)
        {
            throw new InvalidDataException($"cannot load ONNX Runtime library {full}: {e.Message}", e);
        }
        return FromHandle(handle, full);
    }

    /// <summary>The library the managed binding (Microsoft.ML.OnnxRuntime) resolves "onnxruntime" to.</summary>
    public static OrtLibrary ManagedBindingLibrary()
    {
        var handle = NativeLibrary.Load("onnxruntime", typeof(Microsoft.ML.OnnxRuntime.OrtEnv).Assembly, null);
        return FromHandle(handle, "onnxruntime (the managed binding's)");
    }

    private static OrtLibrary FromHandle(nint handle, string path)
    {
        lock (Gate)
        {
            if (Loaded.TryGetValue(handle, out var known))
            {
                return known;
            }
            if (!NativeLibrary.TryGetExport(handle, "OrtGetApiBase", out var getApiBase))
            {
                throw new InvalidDataException($"{path} does not export OrtGetApiBase: not an ONNX Runtime library");
            }
            var apiBase = ((delegate* unmanaged<nint>)getApiBase)();
            var version = Marshal.PtrToStringUTF8(((delegate* unmanaged<nint>)((nint*)apiBase)[1])()) ?? "unknown";
            var library = new OrtLibrary(path, handle, apiBase, version);
            Loaded.Add(handle, library);
            return library;
        }
    }

    /// <summary>
    /// The library's OrtEnv, created on first use and kept for the process (ORT's env is one per library and
    /// reference-counted: if the managed binding already made one in this library, this is the same env).
    /// </summary>
    public nint Env
    {
        get
        {
            lock (_envGate)
            {
                return EnvLocked();
            }
        }
    }

    // ORT_LOGGING_LEVEL_WARNING (2).
    private nint EnvLocked() => _env != 0 ? _env : _env = Api.CreateEnv(2, "onnxattention-native");

    /// <summary>
    /// Registers a plugin execution-provider library (e.g. the CUDA EP's libonnxruntime_providers_cuda.so) with this
    /// library's env once; a later call with the same name and path does nothing, with another path it is refused.
    /// </summary>
    public void RegisterExecutionProviderLibrary(string registrationName, string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new FileNotFoundException($"execution provider library not found: {full}", full);
        }
        lock (_envGate)
        {
            if (_registeredEpLibraries.TryGetValue(registrationName, out var registered))
            {
                if (registered == full)
                {
                    return;
                }
                throw new InvalidOperationException(
                    $"execution provider library '{registrationName}' is already registered from {registered}; cannot register {full} under the same name");
            }
            try
            {
                Api.RegisterExecutionProviderLibrary(EnvLocked(), registrationName, full);
            }
            catch (OrtException e)
            {
                throw new OrtException(e.Code, $"ONNX Runtime {Version} could not register the execution provider library {full}: {e.Message}");
            }
            _registeredEpLibraries.Add(registrationName, full);
        }
    }

    /// <summary>The EP names of the env's devices, in ORT's order (CPUExecutionProvider is always there).</summary>
    public IReadOnlyList<(string EpName, nint Device)> EpDevices() =>
        Api.GetEpDevices(Env).Select(d => (Api.EpDeviceEpName(d), d)).ToList();
}
