using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.Cuda.Launch;

/// <summary>
/// A padded call's row copies on the device (<see cref="TokenMaskRows"/>): stream-ordered scratch, device-to-device
/// copies and memsets on the call's stream, so a row's gather, kernel and scatter run in order without a host wait,
/// and freeing a row's copies once its work is queued is safe.
/// </summary>
internal sealed unsafe class LauncherRowMemory(ICudaLauncher launcher) : IRowMemory
{
    public void* Allocate(long bytes) => (void*)launcher.Allocate(Math.Max(1, bytes));

    public void Free(void* pointer) => launcher.Free((nint)pointer);

    public void Copy(void* to, void* from, long bytes)
    {
        if (bytes > 0)
        {
            launcher.Copy((nint)to, (nint)from, bytes);
        }
    }

    public void Zero(void* to, long bytes)
    {
        if (bytes > 0)
        {
            launcher.Zero((nint)to, bytes);
        }
    }
}
