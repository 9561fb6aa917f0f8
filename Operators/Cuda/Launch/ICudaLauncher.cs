namespace OnnxAttention.Operators.Cuda.Launch;

/// <summary>
/// Where the CUDA operators send their work: kernel launches, stream-ordered scratch memory and device copies, all
/// on one stream (ORT's compute stream for the call). <see cref="DriverLauncher"/> is the real one (CUDA driver API);
/// tests substitute a recording one, so the launch plans (which kernels, which grids, which arguments in which order)
/// are checked without a GPU.
/// </summary>
public interface ICudaLauncher
{
    /// <summary>Streaming multiprocessors of the device (split-K sizing).</summary>
    int MultiprocessorCount { get; }

    /// <summary>The most dynamic shared memory one block may opt in to.</summary>
    int MaxDynamicSharedBytes { get; }

    /// <summary>Launches (asynchronously, on the stream); the module is loaded and the function prepared as needed.</summary>
    void Launch(KernelLaunch launch);

    /// <summary>Device memory of at least <paramref name="bytes"/> bytes, valid for work queued after this call.</summary>
    nint Allocate(long bytes);

    /// <summary>Frees <see cref="Allocate"/>'s memory once the work queued so far has run.</summary>
    void Free(nint pointer);

    void Copy(nint destination, nint source, long bytes);

    void Zero(nint destination, long bytes);
}
