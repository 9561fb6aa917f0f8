using OnnxAttention.Operators.Cuda.Launch;

namespace OnnxAttention.Tests.Cuda;

/// <summary>
/// An <see cref="ICudaLauncher"/> that runs nothing: it hands out distinct fake device addresses and records every
/// launch, allocation, copy, zeroing and free in order, so a test can read back what a launch plan would send to
/// the GPU.
/// </summary>
public sealed class RecordingLauncher(int multiprocessors = 132, int maxDynamicSharedBytes = 227 * 1024) : ICudaLauncher
{
    private long _next = 0x7f00_0000_0000;

    public abstract record Operation;
    public sealed record Launched(KernelLaunch Launch) : Operation;
    public sealed record Allocated(nint Pointer, long Bytes) : Operation;
    public sealed record Freed(nint Pointer) : Operation;
    public sealed record Copied(nint Destination, nint Source, long Bytes) : Operation;
    public sealed record Zeroed(nint Destination, long Bytes) : Operation;

    public List<Operation> Log { get; } = [];

    public IEnumerable<KernelLaunch> Launches => Log.OfType<Launched>().Select(l => l.Launch);

    public int MultiprocessorCount { get; } = multiprocessors;

    public int MaxDynamicSharedBytes { get; } = maxDynamicSharedBytes;

    /// <summary>A fresh fake address far from any other (for the test's own "tensors").</summary>
    public nint Fake() => (nint)Interlocked.Add(ref _next, 0x1_0000_0000);

    public void Launch(KernelLaunch launch) => Log.Add(new Launched(launch));

    public nint Allocate(long bytes)
    {
        var pointer = Fake();
        Log.Add(new Allocated(pointer, bytes));
        return pointer;
    }

    public void Free(nint pointer) => Log.Add(new Freed(pointer));

    public void Copy(nint destination, nint source, long bytes) => Log.Add(new Copied(destination, source, bytes));

    public void Zero(nint destination, long bytes) => Log.Add(new Zeroed(destination, bytes));
}

public static class KernelLaunchArguments
{
    /// <summary>The pointer arguments by parameter name.</summary>
    public static Dictionary<string, nint> Pointers(this KernelLaunch launch) =>
        launch.Arguments.Where(a => a.Kind == KernelArgumentKind.Pointer).ToDictionary(a => a.Name, a => a.PointerValue);
}
