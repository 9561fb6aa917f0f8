using System.Runtime.InteropServices;

namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// Where a padded call's row copies live and how bytes move there (<see cref="TokenMaskRows"/>): host memory for the
/// CPU kernels, device memory on the call's stream for the CUDA ones. The row and layout logic is the same for both;
/// only these four operations differ.
/// </summary>
internal unsafe interface IRowMemory
{
    /// <summary>At least <paramref name="bytes"/> bytes (and at least one, so an empty tensor still has an address).</summary>
    void* Allocate(long bytes);

    void Free(void* pointer);

    void Copy(void* to, void* from, long bytes);

    void Zero(void* to, long bytes);
}

/// <summary>The CPU kernels' row memory: native heap memory, copied and cleared in place.</summary>
internal sealed unsafe class HostRowMemory : IRowMemory
{
    public static readonly HostRowMemory Instance = new();

    private HostRowMemory()
    {
    }

    public void* Allocate(long bytes) => NativeMemory.Alloc((nuint)Math.Max(1, bytes));

    public void Free(void* pointer) => NativeMemory.Free(pointer);

    public void Copy(void* to, void* from, long bytes) => Buffer.MemoryCopy(from, to, bytes, bytes);

    public void Zero(void* to, long bytes) => NativeMemory.Clear(to, (nuint)bytes);
}
