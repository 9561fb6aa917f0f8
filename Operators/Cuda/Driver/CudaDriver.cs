namespace OnnxAttention.Operators.Cuda.Driver;

/// <summary>
/// The process's CUDA driver API (libcuda.so.1, installed with the NVIDIA driver), loaded lazily: nothing here runs
/// until a CUDA kernel object is first created, so registering the operators (CPU sessions included) never touches
/// it, and a machine without a GPU never loads it. The first use tries the path in ONNXATTENTION_LIBCUDA (when set),
/// then the driver's sonames. NOT RUN ON A GPU YET: on this project's machines libcuda is absent, so only the
/// "unavailable" path has run.
/// </summary>
public static class CudaDriver
{
    /// <summary>An explicit library path to try before the usual names.</summary>
    public const string PathVariable = "ONNXATTENTION_LIBCUDA";

    private static readonly Lazy<(CudaDriverLibrary? Library, string Failure)> Loaded =
        new(() => Load(Candidates()), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>True when the driver library loaded (this triggers the load).</summary>
    public static bool IsAvailable => Loaded.Value.Library != null;

    /// <summary>Why the driver did not load (every candidate and its failure); empty when it did.</summary>
    public static string UnavailableReason => Loaded.Value.Failure;

    /// <summary>Library names tried in order on this OS (after <see cref="PathVariable"/>).</summary>
    public static IReadOnlyList<string> CandidateNames =>
        OperatingSystem.IsWindows() ? ["nvcuda.dll"] : ["libcuda.so.1", "libcuda.so"];

    /// <summary>The loaded driver; throws <see cref="CudaUnavailableException"/> naming every candidate tried.</summary>
    public static CudaDriverLibrary Library => Loaded.Value.Library ?? throw new CudaUnavailableException(Loaded.Value.Failure);

    /// <summary>
    /// Tries <paramref name="candidates"/> in order and keeps the first that loads and exports every entry point;
    /// otherwise (null, a message listing each candidate's failure). Public so a test can name libraries that do not
    /// exist without touching the process-wide <see cref="Library"/>.
    /// </summary>
    public static (CudaDriverLibrary? Library, string Failure) Load(IReadOnlyList<string> candidates)
    {
        var failures = new List<string>();
        foreach (var candidate in candidates)
        {
            var library = CudaDriverLibrary.TryLoad(candidate, out var failure);
            if (library != null)
            {
                return (library, "");
            }
            failures.Add(failure);
        }
        return (null, "the CUDA driver library could not be loaded (" + string.Join("; ", failures) +
            "). The CUDA variants of the OnnxAttention operators need an NVIDIA GPU and its driver (libcuda.so.1); set " +
            PathVariable + " to the library's path if it is installed somewhere unusual.");
    }

    private static List<string> Candidates()
    {
        var candidates = new List<string>();
        var explicitPath = Environment.GetEnvironmentVariable(PathVariable);
        if (!string.IsNullOrEmpty(explicitPath))
        {
            candidates.Add(explicitPath);
        }
        candidates.AddRange(CandidateNames);
        return candidates;
    }
}
