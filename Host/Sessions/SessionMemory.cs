using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Host.Sessions;

/// <summary>
/// The memory a model's sessions may use. Before a session is created, a tensor whose size is known statically
/// (a Range with constant bounds, or one bounded below by a dimension, a ConstantOfShape of a constant shape) and
/// exceeds <see cref="Budget"/> is refused naming the node: ONNX Runtime would try to allocate it (a Range from
/// -2^31-1 asks for 2^31 elements). With <see cref="Cap"/> every managed session of the process also allocates from
/// one CPU arena of that size (ORT's env allocator: the cap is process-wide because ORT's is), so an allocation
/// past it fails the run with ORT's error instead of growing the process.
/// </summary>
public static class SessionMemory
{
    /// <summary>Without a cap, no single computed tensor may need more than this (4 GiB).</summary>
    public const long DefaultBudget = 4L << 30;

    private static readonly Lock Gate = new();
    private static long? _cap;

    /// <summary>The largest computed tensor a session may be asked to make, in bytes.</summary>
    public static long Budget => _cap ?? DefaultBudget;

    /// <summary>The arena cap in force, null when none was set.</summary>
    public static long? CurrentCap => _cap;

    /// <summary>
    /// Caps every later managed session at <paramref name="bytes"/> (at most 4 GiB - 1, the largest arena ORT's managed
    /// API can configure). The first cap of a process holds: ORT registers one env allocator per device.
    /// </summary>
    public static void Cap(long bytes)
    {
        if (bytes < 1L << 20 || bytes > uint.MaxValue)
        {
            throw new ArgumentException($"--max-memory must be between 1 MiB and {uint.MaxValue} bytes (4 GiB - 1), got {bytes}");
        }
        lock (Gate)
        {
            if (_cap is { } existing)
            {
                if (existing != bytes) throw new ArgumentException($"a memory cap of {existing} bytes is already in force in this process; it cannot be changed to {bytes}");
                return;
            }
            using var info = new OrtMemoryInfo(OrtMemoryInfo.allocatorCPU, OrtAllocatorType.ArenaAllocator, 0, OrtMemType.Default);
            using var arena = new OrtArenaCfg((uint)bytes, -1, -1, -1);
            OrtEnv.Instance().CreateAndRegisterAllocator(info, arena);
            _cap = bytes;
        }
    }

    /// <summary>Makes <paramref name="options"/> use the capped arena when a cap is in force.</summary>
    public static void Apply(SessionOptions options)
    {
        if (_cap is not null) options.AddSessionConfigEntry("session.use_env_allocators", "1");
    }

    /// <summary>Refuses a model with a statically known tensor larger than <see cref="Budget"/>.</summary>
    public static void CheckModel(ModelProto model) => ResourceChecks.Check(model, Budget);

    /// <summary>Parses a size such as 512M, 2G or 1048576 (bytes).</summary>
    public static long ParseSize(string text)
    {
        var t = text.Trim();
        var scale = 1L;
        if (t.Length > 0 && char.IsLetter(t[^1]))
        {
            scale = char.ToUpperInvariant(t[^1]) switch
            {
                'K' => 1L << 10,
                'M' => 1L << 20,
                'G' => 1L << 30,
                _ => throw new ArgumentException($"--max-memory '{text}': use bytes or a K, M or G suffix"),
            };
            t = t[..^1];
        }
        if (!long.TryParse(t, out var n) || n <= 0 || n > long.MaxValue / scale)
        {
            throw new ArgumentException($"--max-memory '{text}' is not a positive size (bytes, or with a K, M or G suffix)");
        }
        return n * scale;
    }
}
