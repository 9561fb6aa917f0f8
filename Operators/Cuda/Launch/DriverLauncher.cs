using OnnxAttention.Operators.Cuda.Driver;

namespace OnnxAttention.Operators.Cuda.Launch;

/// <summary>
/// The real <see cref="ICudaLauncher"/>: the CUDA driver API on one stream (ORT's compute stream for the call), in
/// the context current on the calling thread. Scratch memory is stream-ordered (cuMemAllocAsync / cuMemFreeAsync),
/// so freeing it right after queueing the work that uses it is safe. NOT RUN ON A GPU YET.
/// </summary>
internal sealed unsafe class DriverLauncher : ICudaLauncher
{
    private readonly CudaDriverLibrary _driver;
    private readonly nint _context;
    private readonly nint _stream;

    /// <param name="stream">ORT's stream (KernelContext_GetGPUComputeStream); 0 is CUDA's legacy default stream.</param>
    public DriverLauncher(nint stream)
    {
        _driver = CudaDriver.Library;
        _context = _driver.ContextFor(stream);
        _stream = stream;
    }

    public int MultiprocessorCount => CudaModuleCache.DeviceAttribute(_driver, _context, CudaDriverLibrary.AttributeMultiprocessorCount);

    public int MaxDynamicSharedBytes => CudaModuleCache.DeviceAttribute(_driver, _context, CudaDriverLibrary.AttributeMaxSharedMemoryPerBlockOptin);

    public void Launch(KernelLaunch launch)
    {
        var module = CudaModuleCache.For(_driver, _context, launch.Specialization);
        var function = module.Function(_driver, launch.EntryPoint);
        module.EnsureDynamicShared(_driver, function, launch.DynamicSharedBytes);

        // cuLaunchKernel takes an array of pointers to each argument's value; every value here is 4 or 8 bytes
        // and the driver copies them before returning. Each sits in an 8-byte slot: on the little-endian targets
        // .NET runs CUDA on (x64, arm64) a 4-byte int or float is the slot's first 4 bytes, as KernelArgument stores it.
        var count = launch.Arguments.Count;
        var values = stackalloc long[count];
        var pointers = stackalloc void*[count];
        for (var i = 0; i < count; i++)
        {
            values[i] = launch.Arguments[i].Bits;
            pointers[i] = &values[i];
        }
        _driver.Launch(function, (uint)launch.Grid.X, (uint)launch.Grid.Y, 1, (uint)launch.Threads, (uint)launch.DynamicSharedBytes,
            _stream, pointers, launch.EntryPoint);
    }

    public nint Allocate(long bytes) => _driver.AllocateAsync(bytes, _stream);

    public void Free(nint pointer) => _driver.FreeAsync(pointer, _stream);

    public void Copy(nint destination, nint source, long bytes)
    {
        if (bytes > 0)
        {
            _driver.CopyAsync(destination, source, bytes, _stream);
        }
    }

    public void Zero(nint destination, long bytes)
    {
        if (bytes > 0)
        {
            _driver.ZeroAsync(destination, bytes, _stream);
        }
    }
}
