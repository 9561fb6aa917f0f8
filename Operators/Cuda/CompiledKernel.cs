namespace OnnxAttention.Operators.Cuda;

/// <summary>
/// PTX for one specialisation of a kernel source. <see cref="Architecture"/> is the compute_XX it targets (the driver
/// JIT-compiles it for the actual GPU, which may be newer). <see cref="FromCache"/> says whether the PTX came from
/// the disk cache (then <see cref="Log"/> is empty: NVRTC did not run).
/// </summary>
public sealed record CompiledKernel(
    KernelSource Source,
    string Ptx,
    string Log,
    int Architecture,
    IReadOnlyList<string> Options,
    bool FromCache,
    string? CacheFile)
{
    /// <summary>True when the PTX defines a kernel of that name (a PTX <c>.entry</c>).</summary>
    public bool HasEntryPoint(string name) => PtxText.HasEntry(Ptx, name);
}

internal static class PtxText
{
    public static bool HasEntry(string ptx, string name) =>
        ptx.Contains($".entry {name}(", StringComparison.Ordinal);
}
