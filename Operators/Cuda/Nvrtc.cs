namespace OnnxAttention.Operators.Cuda;

/// <summary>
/// The process's NVRTC (CUDA's run-time compiler), loaded lazily: nothing here runs until a member is first used,
/// so registering our operators never touches NVRTC and a machine without CUDA never loads it. The first use tries
/// the path in ONNXATTENTION_NVRTC (when set), then the usual sonames and install locations, newest first, and keeps
/// the first library that loads and exports every entry point we call.
/// </summary>
public static class Nvrtc
{
    /// <summary>An explicit library path to try before the usual names.</summary>
    public const string PathVariable = "ONNXATTENTION_NVRTC";

    private static readonly Lazy<(NvrtcLibrary? Library, string Failure)> Loaded = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>True when an NVRTC library loaded (this triggers the load).</summary>
    public static bool IsAvailable => Loaded.Value.Library != null;

    /// <summary>Why no NVRTC loaded (every candidate and its failure); empty when one did.</summary>
    public static string UnavailableReason => Loaded.Value.Failure;

    /// <summary>The loaded library's name or path.</summary>
    public static string LibraryName => Library.Name;

    /// <summary>NVRTC's version (nvrtcVersion).</summary>
    public static Version Version => Library.Version;

    /// <summary>The architectures (sm numbers) NVRTC can target, ascending.</summary>
    public static IReadOnlyList<int> SupportedArchitectures => Library.SupportedArchitectures;

    /// <summary>Library names tried in order on this OS (after <see cref="PathVariable"/>).</summary>
    public static IReadOnlyList<string> CandidateNames
    {
        get
        {
            if (OperatingSystem.IsWindows())
            {
                return ["nvrtc64_130_0.dll", "nvrtc64_120_0.dll", "nvrtc64_112_0.dll", "nvrtc64_111_0.dll", "nvrtc64_110_0.dll"];
            }
            var names = new List<string>
            {
                "libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so.11.1", "libnvrtc.so.11.0",
            };
            var cudaPath = Environment.GetEnvironmentVariable("CUDA_PATH");
            foreach (var root in new[] { cudaPath, "/usr/local/cuda" })
            {
                if (!string.IsNullOrEmpty(root))
                {
                    names.Add(Path.Combine(root, "lib64", "libnvrtc.so"));
                }
            }
            return names;
        }
    }

    /// <summary>
    /// Compiles one CUDA source to PTX. <paramref name="headers"/> are (include name, text) pairs served to
    /// #include from memory. Throws <see cref="NvrtcUnavailableException"/> without NVRTC and
    /// <see cref="NvrtcException"/> (whose message ends with the compile log) when compilation fails.
    /// </summary>
    public static NvrtcCompilation Compile(string source, string name, IReadOnlyList<KeyValuePair<string, string>> headers,
        IReadOnlyList<string> options) => Library.Compile(source, name, headers, options);

    internal static NvrtcLibrary Library =>
        Loaded.Value.Library ?? throw new NvrtcUnavailableException(Loaded.Value.Failure);

    private static (NvrtcLibrary?, string) Load()
    {
        var candidates = new List<string>();
        var explicitPath = Environment.GetEnvironmentVariable(PathVariable);
        if (!string.IsNullOrEmpty(explicitPath))
        {
            candidates.Add(explicitPath);
        }
        candidates.AddRange(CandidateNames);

        var failures = new List<string>();
        foreach (var candidate in candidates)
        {
            var library = NvrtcLibrary.TryLoad(candidate, out var failure);
            if (library != null)
            {
                return (library, "");
            }
            failures.Add(failure);
        }
        return (null, "no NVRTC library could be loaded (" + string.Join("; ", failures) +
            "). Install CUDA's NVRTC (Debian: libnvrtc11.2 from non-free, or the CUDA toolkit) or set " + PathVariable +
            " to the library's path.");
    }
}
