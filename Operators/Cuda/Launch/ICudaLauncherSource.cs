using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.Cuda.Launch;

/// <summary>
/// Where a CUDA operator's kernels get the launcher for a call. The real source (the default) launches on ORT's
/// compute stream through the CUDA driver; tests give an operator one that runs the kernels on their host emulation, so
/// a whole Compute call, padded rows included, runs in a CPU session without a GPU.
/// </summary>
public interface ICudaLauncherSource
{
    /// <summary>Loads what launching needs; called when a kernel is created, so a machine without it fails session creation.</summary>
    void Load();

    /// <summary>The launcher for this call (and for the rows of a padded call, which share its stream).</summary>
    ICudaLauncher For(in KernelContext context);
}

/// <summary>The real source: the CUDA driver and NVRTC, ORT's compute stream of the call.</summary>
internal sealed unsafe class DriverLauncherSource : ICudaLauncherSource
{
    public static readonly DriverLauncherSource Instance = new();

    private DriverLauncherSource()
    {
    }

    public void Load()
    {
        // Both libraries load here, so a machine without them fails session creation with their own messages
        // rather than the first Run.
        _ = Driver.CudaDriver.Library;
        _ = Nvrtc.Version;
    }

    public ICudaLauncher For(in KernelContext context)
    {
        nint stream = 0;
        Interop.StatusBoundary.ThrowIfError(context.Api, context.Api.KernelContextGetGpuComputeStream(context.Handle, &stream));
        return new DriverLauncher(stream);
    }
}
