using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Registration;

namespace OnnxAttention.Host.NativeRuntime;

/// <summary>
/// An ORT session created through the C API of an <see cref="OrtLibrary"/>, from model bytes, with our operators
/// registered through that library's own table. It knows the memory that state should live in
/// (<see cref="DeviceMemoryInfo"/>: CPU, or CUDA device memory) and gives tensors allocated there by the session's
/// allocator for it.
/// </summary>
public sealed unsafe class NativeSession : IDisposable
{
    private readonly OrtSessionApi _api;
    private nint _options;
    private nint _session;
    private nint _runOptions;
    private nint _cpuMemory;
    private nint _deviceMemory;
    private readonly bool _ownsDeviceMemory;
    private nint _deviceAllocator;

    public NativeSession(OrtLibrary library, ReadOnlySpan<byte> model, NativeSessionSettings settings)
    {
        Library = library;
        Settings = settings;
        _api = library.Api;
        try
        {
            _options = _api.CreateSessionOptions();
            if (settings.IntraOpThreads > 0)
            {
                _api.SetIntraOpNumThreads(_options, settings.IntraOpThreads);
            }
            OperatorRegistry.AddTo(_api.Operators, _options);
            var pluginDevice = settings.Provider switch
            {
                NativeExecutionProvider.CudaPlugin => AppendCudaPlugin(settings),
                NativeExecutionProvider.CudaClassic => AppendCudaClassic(settings),
                _ => 0,
            };
            _session = _api.CreateSessionFromArray(library.Env, model, _options);
            _runOptions = _api.CreateRunOptions();
            _cpuMemory = _api.CreateCpuMemoryInfo();
            (_deviceMemory, _ownsDeviceMemory) = settings.Provider switch
            {
                NativeExecutionProvider.Cpu => (_api.CreateCpuMemoryInfo(), true),
                // The plugin device names its own memory; an older plugin without one is addressed as "Cuda" by id.
                NativeExecutionProvider.CudaPlugin when _api.EpDeviceMemoryInfo(pluginDevice) is not 0 and var m => (m, false),
                _ => (_api.CreateMemoryInfo("Cuda", settings.DeviceId), true),
            };
            _deviceAllocator = _api.CreateAllocator(_session, _deviceMemory);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public OrtLibrary Library { get; }

    public NativeSessionSettings Settings { get; }

    public OrtSessionApi Api => _api;

    public nint Handle => _session;

    /// <summary>Host memory (inputs we fill, outputs we read).</summary>
    public nint CpuMemoryInfo => _cpuMemory;

    /// <summary>Where state lives between steps: CPU memory, or the CUDA device's memory on a CUDA EP.</summary>
    public nint DeviceMemoryInfo => _deviceMemory;

    /// <summary>ORT's name of <see cref="DeviceMemoryInfo"/> ("Cpu", "Cuda").</summary>
    public string DeviceMemoryName => _api.MemoryInfoGetName(_deviceMemory);

    /// <summary>A tensor in <see cref="DeviceMemoryInfo"/>, allocated by the session's allocator for it; contents undefined.</summary>
    public NativeValue AllocateOnDevice(ReadOnlySpan<long> shape, OrtElementType type = OrtElementType.Float) =>
        new(_api, _api.CreateTensor(_deviceAllocator, shape, type));

    public HostTensor<T> Host<T>(ReadOnlySpan<long> shape) where T : unmanaged => new(_api, _cpuMemory, shape);

    public NativeIoBinding CreateBinding() => new(this);

    public void Run(NativeIoBinding binding)
    {
        _api.RunWithBinding(_session, _runOptions, binding.Handle);
        // On a GPU EP, outputs bound to host memory are copied after the run; this waits for that copy.
        _api.SynchronizeBoundOutputs(binding.Handle);
    }

    /// <summary>
    /// NOT RUN ON A GPU (there was none where this was written). Registers the CUDA plugin library with the library's
    /// env, picks the <see cref="NativeSessionSettings.DeviceId"/>-th CUDAExecutionProvider device, appends it.
    /// The failure paths (missing library, a library that is no EP plugin, no CUDA device) are tested on CPU.
    /// </summary>
    private nint AppendCudaPlugin(NativeSessionSettings settings)
    {
        var path = settings.CudaPluginLibrary ?? throw new ArgumentException("the CUDA plugin route needs the path of libonnxruntime_providers_cuda.so");
        Library.RegisterExecutionProviderLibrary("CUDA", path);
        var device = PickDevice(Library, "CUDAExecutionProvider", settings.DeviceId);
        _api.SessionOptionsAppendExecutionProviderV2(_options, Library.Env, device, []);
        return device;
    }

    /// <summary>NOT RUN ON A GPU. The in-tree CUDA EP; a CPU build of ORT refuses it with a status (tested).</summary>
    private nint AppendCudaClassic(NativeSessionSettings settings)
    {
        try
        {
            _api.SessionOptionsAppendCudaV2(_options, [new("device_id", settings.DeviceId.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
        }
        catch (OrtException e)
        {
            throw new OrtException(e.Code,
                $"ONNX Runtime {Library.Version} ({Library.Path}) cannot append the CUDA execution provider (SessionOptionsAppendExecutionProvider_CUDA_V2): {e.Message} " +
                "(a CPU core that loads plugin EPs, such as ORT 1.29 from npm, takes CUDA through its plugin library: --cuda-plugin PATH)");
        }
        return 0;
    }

    /// <summary>The index-th EP device of that EP, or an error listing what the env has.</summary>
    public static nint PickDevice(OrtLibrary library, string epName, int index)
    {
        var devices = library.EpDevices();
        var matching = devices.Where(d => d.EpName == epName).ToList();
        if (index < 0 || index >= matching.Count)
        {
            throw new InvalidOperationException(
                $"ONNX Runtime {library.Version} has {matching.Count} {epName} device(s), so device {index} cannot be used; " +
                $"its EP devices: {(devices.Count == 0 ? "none" : string.Join(", ", devices.Select(d => d.EpName)))}");
        }
        return matching[index].Device;
    }

    public void Dispose()
    {
        if (_deviceAllocator != 0) _api.ReleaseAllocator(_deviceAllocator);
        if (_deviceMemory != 0 && _ownsDeviceMemory) _api.ReleaseMemoryInfo(_deviceMemory);
        if (_cpuMemory != 0) _api.ReleaseMemoryInfo(_cpuMemory);
        if (_runOptions != 0) _api.ReleaseRunOptions(_runOptions);
        if (_session != 0) _api.ReleaseSession(_session);
        if (_options != 0) _api.ReleaseSessionOptions(_options);
        _deviceAllocator = _deviceMemory = _cpuMemory = _runOptions = _session = _options = 0;
    }
}
