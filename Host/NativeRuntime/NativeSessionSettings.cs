namespace OnnxAttention.Host.NativeRuntime;

/// <summary>Where a C-API session runs.</summary>
public enum NativeExecutionProvider
{
    /// <summary>ORT's CPU EP (the only one run in this project's tests).</summary>
    Cpu,

    /// <summary>
    /// CUDA through a plugin EP library: RegisterExecutionProviderLibrary, GetEpDevices, pick CUDAExecutionProvider,
    /// SessionOptionsAppendExecutionProvider_V2. The route seen working with ORT 1.29 on an H100 (see docs/cuda-sessions.md).
    /// </summary>
    CudaPlugin,

    /// <summary>CUDA through the in-tree provider: SessionOptionsAppendExecutionProvider_CUDA_V2 (needs a GPU build of ORT).</summary>
    CudaClassic,
}

/// <param name="Provider">The execution provider.</param>
/// <param name="CudaPluginLibrary">For <see cref="NativeExecutionProvider.CudaPlugin"/>: path of libonnxruntime_providers_cuda.so.</param>
/// <param name="DeviceId">The CUDA device (index among the plugin's CUDA devices, or the classic EP's device_id).</param>
/// <param name="IntraOpThreads">ORT intra-op threads (0: ORT's default).</param>
public sealed record NativeSessionSettings(
    NativeExecutionProvider Provider = NativeExecutionProvider.Cpu,
    string? CudaPluginLibrary = null,
    int DeviceId = 0,
    int IntraOpThreads = 0)
{
    public static NativeSessionSettings Cpu(int intraOpThreads = 0) => new(IntraOpThreads: intraOpThreads);

    public bool OnCuda => Provider != NativeExecutionProvider.Cpu;

    /// <summary>"cpu" or "cuda" (CLI --ep), with a plugin library choosing the plugin route.</summary>
    public static NativeSessionSettings Parse(string ep, string? cudaPlugin, int intraOpThreads)
    {
        return ep.ToLowerInvariant() switch
        {
            "cpu" when cudaPlugin is null => Cpu(intraOpThreads),
            "cpu" => throw new ArgumentException("--cuda-plugin needs --ep cuda"),
            "cuda" => new NativeSessionSettings(cudaPlugin is null ? NativeExecutionProvider.CudaClassic : NativeExecutionProvider.CudaPlugin,
                cudaPlugin, 0, intraOpThreads),
            _ => throw new ArgumentException($"unknown execution provider '{ep}' (cpu or cuda)"),
        };
    }
}
