using System.Security.Cryptography;
using System.Text;

namespace OnnxAttention.Operators.Cuda;

/// <summary>
/// Compiles kernel sources to PTX with NVRTC, specialised through -D defines, and keeps the PTX in an on-disk cache
/// keyed by a SHA-256 of everything that decides it: the source and header texts, every option (the target
/// architecture and the defines) and NVRTC's version. A cached file is used only when it defines every entry
/// point the source promises; it is written to a temporary name and moved into place, so a reader never sees a
/// half-written file and concurrent compilers of the same key simply write the same bytes.
/// </summary>
public sealed class KernelCompiler
{
    /// <summary>
    /// The oldest target the kernels build for: sm_80 (Ampere) brings the bfloat16 conversions and the
    /// bfloat16/float16 mma.sync shapes they use.
    /// </summary>
    public const int MinimumArchitecture = 80;

    // Part of every cache key: bump when the key's meaning or the file format changes.
    private const string CacheFormat = "onnxattention-ptx-cache v1";

    private readonly string? _cacheDirectory;

    /// <param name="cacheDirectory">Folder for cached PTX (created when needed); null for no disk cache.</param>
    public KernelCompiler(string? cacheDirectory)
    {
        _cacheDirectory = cacheDirectory;
    }

    /// <summary>
    /// The architecture to target for a GPU of compute capability <paramref name="computeCapability"/> (major * 10
    /// + minor; null: <see cref="MinimumArchitecture"/>, which every supported GPU runs): the newest one NVRTC
    /// supports that is not newer than the GPU.
    /// </summary>
    public static int SelectArchitecture(IReadOnlyList<int> supported, int? computeCapability)
    {
        var requested = computeCapability ?? MinimumArchitecture;
        if (requested < MinimumArchitecture)
        {
            throw new ArgumentOutOfRangeException(nameof(computeCapability), requested,
                $"the kernels need compute capability {MinimumArchitecture / 10}.{MinimumArchitecture % 10} or newer");
        }
        var usable = supported.Where(a => a >= MinimumArchitecture && a <= requested).ToArray();
        if (usable.Length == 0)
        {
            throw new NvrtcException(
                $"NVRTC supports architectures {string.Join(", ", supported)}, none in [{MinimumArchitecture}, {requested}]: " +
                "install NVRTC 11.1 or newer", 0, "");
        }
        return usable.Max();
    }

    /// <summary>
    /// PTX for <paramref name="source"/> specialised with <paramref name="defines"/>, from the cache when it is there.
    /// Throws <see cref="NvrtcUnavailableException"/> without NVRTC and <see cref="NvrtcException"/> (message ending
    /// with NVRTC's log) when the source does not compile.
    /// </summary>
    public CompiledKernel Compile(KernelSource source, IEnumerable<KernelDefine> defines, int? computeCapability = null)
    {
        var nvrtc = Nvrtc.Library;
        var architecture = SelectArchitecture(nvrtc.SupportedArchitectures, computeCapability);
        var options = Options(architecture, defines);
        var headers = KernelSources.Headers;

        string? cacheFile = null;
        if (_cacheDirectory != null)
        {
            var key = CacheKey(nvrtc.Version, source, headers, options);
            cacheFile = Path.Combine(_cacheDirectory, $"{Path.GetFileNameWithoutExtension(source.FileName)}-{key}.ptx");
            if (File.Exists(cacheFile))
            {
                var cached = File.ReadAllText(cacheFile);
                if (source.EntryPoints.All(e => PtxText.HasEntry(cached, e)))
                {
                    return new CompiledKernel(source, cached, "", architecture, options, FromCache: true, cacheFile);
                }
            }
        }

        var result = nvrtc.Compile(source.Text, source.FileName, headers, options);
        var missing = source.EntryPoints.Where(e => !PtxText.HasEntry(result.Ptx, e)).ToArray();
        if (missing.Length > 0)
        {
            throw new NvrtcException(
                $"{source.FileName} compiled but its PTX lacks the entry point(s) {string.Join(", ", missing)}", 0, result.Log);
        }
        if (cacheFile != null)
        {
            Write(cacheFile, result.Ptx);
        }
        return new CompiledKernel(source, result.Ptx, result.Log, architecture, options, FromCache: false, cacheFile);
    }

    /// <summary>The NVRTC options for a target and a set of defines: sorted by name, each name once.</summary>
    public static IReadOnlyList<string> Options(int architecture, IEnumerable<KernelDefine> defines)
    {
        var sorted = defines.OrderBy(d => d.Name, StringComparer.Ordinal).ToArray();
        for (var i = 1; i < sorted.Length; i++)
        {
            if (sorted[i].Name == sorted[i - 1].Name)
            {
                throw new ArgumentException($"define {sorted[i].Name} is given twice", nameof(defines));
            }
        }
        var options = new List<string> { $"--gpu-architecture=compute_{architecture}", "--std=c++17" };
        options.AddRange(sorted.Select(d => d.Option));
        return options;
    }

    private static string CacheKey(Version nvrtcVersion, KernelSource source,
        IReadOnlyList<KeyValuePair<string, string>> headers, IReadOnlyList<string> options)
    {
        // Length-prefixed fields, so no two different inputs serialise to the same text.
        var text = new StringBuilder();
        void Field(string value) => text.Append(value.Length).Append(':').Append(value).Append('\n');
        Field(CacheFormat);
        Field($"nvrtc {nvrtcVersion}");
        Field(options.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (var option in options)
        {
            Field(option);
        }
        Field(source.FileName);
        Field(source.Text);
        foreach (var (name, body) in headers)
        {
            Field(name);
            Field(body);
        }
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..32];
    }

    private static void Write(string path, string ptx)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            File.WriteAllText(temporary, ptx);
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }
}
