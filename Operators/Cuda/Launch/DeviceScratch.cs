namespace OnnxAttention.Operators.Cuda.Launch;

/// <summary>
/// Scratch device memory for one Compute call, freed (stream-ordered, after the queued work) when disposed.
/// </summary>
public sealed class DeviceScratch(ICudaLauncher launcher) : IDisposable
{
    private readonly List<nint> _allocations = [];

    public ICudaLauncher Launcher { get; } = launcher;

    public nint Allocate(long bytes)
    {
        var pointer = Launcher.Allocate(bytes);
        _allocations.Add(pointer);
        return pointer;
    }

    public void Dispose()
    {
        foreach (var pointer in _allocations)
        {
            Launcher.Free(pointer);
        }
        _allocations.Clear();
    }
}
