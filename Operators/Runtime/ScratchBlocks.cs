using System.Runtime.InteropServices;

namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// Native scratch blocks kept between calls. A fresh block of megabytes is new pages, and the first touch of each page
/// is a fault: on the 2-core VM that measured about 20 µs a 4 KiB page (45 ms to fill a fresh 8 MiB block, 0.5 ms to
/// fill it again), so converting a bfloat16 prefill's activations into fresh float32 blocks took 10x the recurrence
/// itself. malloc hands big blocks back to the system on free, so the next call faults again; here the blocks stay,
/// as in ORT's own CPU arena, up to a limit in all (the rest are freed).
/// </summary>
internal sealed unsafe class ScratchBlocks(long retainedBytesLimit)
{
    /// <summary>The most idle bytes <see cref="Shared"/> keeps: room for a bfloat16 prefill B4 H16 T4096 d128's q, k, v and y in float32.</summary>
    public const long SharedLimit = 512L * 1024 * 1024;

    /// <summary>The pool every kernel's scratch comes from.</summary>
    public static ScratchBlocks Shared { get; } = new(SharedLimit);

    private readonly object _gate = new();
    private readonly List<(nint Block, long Bytes)> _idle = [];
    private long _idleBytes;

    public long RetainedBytesLimit { get; } = retainedBytesLimit;

    /// <summary>The idle bytes held now.</summary>
    public long IdleBytes
    {
        get
        {
            lock (_gate)
            {
                return _idleBytes;
            }
        }
    }

    /// <summary>A block of at least <paramref name="bytes"/> (uninitialised); give it back with its <paramref name="capacity"/>.</summary>
    public void* Rent(long bytes, out long capacity)
    {
        bytes = Math.Max(1, bytes);
        lock (_gate)
        {
            // The smallest idle block that fits, so a large one stays for a large call.
            var best = -1;
            for (var i = 0; i < _idle.Count; i++)
            {
                if (_idle[i].Bytes >= bytes && (best < 0 || _idle[i].Bytes < _idle[best].Bytes))
                {
                    best = i;
                }
            }
            if (best >= 0)
            {
                var (block, size) = _idle[best];
                _idle.RemoveAt(best);
                _idleBytes -= size;
                capacity = size;
                return (void*)block;
            }
        }
        capacity = bytes;
        return NativeMemory.Alloc((nuint)bytes);
    }

    /// <summary>Keeps a rented block for a later call, or frees it (and smaller idle ones) to stay under the limit.</summary>
    public void Return(void* block, long capacity)
    {
        if (block == null)
        {
            return;
        }
        if (capacity > RetainedBytesLimit)
        {
            NativeMemory.Free(block);
            return;
        }
        List<nint>? free = null;
        lock (_gate)
        {
            while (_idleBytes + capacity > RetainedBytesLimit)
            {
                var smallest = 0;
                for (var i = 1; i < _idle.Count; i++)
                {
                    if (_idle[i].Bytes < _idle[smallest].Bytes)
                    {
                        smallest = i;
                    }
                }
                (free ??= []).Add(_idle[smallest].Block);
                _idleBytes -= _idle[smallest].Bytes;
                _idle.RemoveAt(smallest);
            }
            _idle.Add(((nint)block, capacity));
            _idleBytes += capacity;
        }
        // No empty list when nothing is freed: a decode step must not allocate.
        if (free is null)
        {
            return;
        }
        foreach (var b in free)
        {
            NativeMemory.Free((void*)b);
        }
    }
}
