using NUnit.Framework;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Native;

/// <summary>
/// Builds libonnxattention.so with the repository's build-native.sh and compiles tools/native-host/host.c with gcc
/// against the restored ORT package. A missing tool fails the tests with a message saying what to install: the
/// native library is a deliverable, so its tests must not quietly skip.
/// </summary>
public sealed class NativeBuild : IDisposable
{
    // Two NativeAOT publishes (x86-64-v3 and x86-64-v2) and the loader.
    private static readonly TimeSpan PublishTimeout = TimeSpan.FromMinutes(15);

    /// <summary>The instruction-set builds build-native.sh puts beside the loader, best first.</summary>
    public static readonly string[] Builds = ["x86-64-v3", "x86-64-v2"];
    private static readonly TimeSpan CompileTimeout = TimeSpan.FromMinutes(1);

    private NativeBuild(string library, string host, string workDir)
    {
        Library = library;
        Host = host;
        WorkDir = workDir;
    }

    /// <summary>artifacts/native/linux-x64/libonnxattention.so: the loader that picks a build (Operators/Native/isa-loader.c).</summary>
    public string Library { get; }

    /// <summary>The NativeAOT build for an instruction set of <see cref="Builds"/>, beside <see cref="Library"/>.</summary>
    public string Build(string isa) => Path.Combine(Path.GetDirectoryName(Library)!, $"libonnxattention-{isa}.so");

    /// <summary>The compiled C host.</summary>
    public string Host { get; }

    /// <summary>A scratch folder deleted with this object.</summary>
    public string WorkDir { get; }

    public static NativeBuild Create()
    {
        if (!OperatingSystem.IsLinux() || System.Runtime.InteropServices.RuntimeInformation.OSArchitecture != System.Runtime.InteropServices.Architecture.X64)
        {
            Assert.Fail("the native library is built for linux-x64 only; this machine is " +
                System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier);
        }
        if (ExternalProcess.Find("clang") is null && ExternalProcess.Find("gcc") is null)
        {
            Assert.Fail("NativeAOT publishing links with clang (or gcc), and neither is on PATH: " +
                "apt-get install -y clang zlib1g-dev (.ci/run does this)");
        }
        if (ExternalProcess.Find("objcopy") is null)
        {
            Assert.Fail("NativeAOT publishing strips symbols with objcopy, which is not on PATH: apt-get install -y binutils");
        }
        var gcc = ExternalProcess.Find("gcc") ??
            throw new AssertionException("the C host is compiled with gcc, which is not on PATH: apt-get install -y gcc (.ci/run does this)");

        var workDir = Directory.CreateTempSubdirectory("onnxattention-native-").FullName;
        try
        {
            var library = PublishLibrary();
            var host = CompileHost(gcc, workDir);
            return new NativeBuild(library, host, workDir);
        }
        catch
        {
            Directory.Delete(workDir, recursive: true);
            throw;
        }
    }

    private static string PublishLibrary()
    {
        var script = Path.Combine(TestPaths.RepositoryRoot, "build-native.sh");
        // No build servers: they would outlive the publish and hold its output pipes open.
        var result = ExternalProcess.Run("bash", [script, "-nodeReuse:false", "-p:UseSharedCompilation=false"],
            PublishTimeout, new Dictionary<string, string> { ["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0" });
        if (result.ExitCode != 0)
        {
            Assert.Fail($"build-native.sh (dotnet publish with NativeAOT) failed with exit code {result.ExitCode}:\n{result.Tail()}");
        }
        var library = Path.Combine(TestPaths.RepositoryRoot, "artifacts", "native", "linux-x64", "libonnxattention.so");
        foreach (var file in Builds.Select(isa => $"libonnxattention-{isa}.so").Prepend("libonnxattention.so"))
        {
            var path = Path.Combine(Path.GetDirectoryName(library)!, file);
            Assert.That(File.Exists(path), Is.True, $"build-native.sh succeeded but {path} is missing:\n{result.Tail()}");
        }
        return library;
    }

    private static string CompileHost(string gcc, string workDir) =>
        CompileHost(gcc, workDir, Path.Combine(TestPaths.OrtPackage, "runtimes", "linux-x64", "native", "libonnxruntime.so"),
            Path.Combine(TestPaths.OrtPackage, "build", "native", "include"), "onnxattention-host");

    /// <summary>
    /// The C host compiled against another ONNX Runtime (its libonnxruntime.so and C headers), e.g. an older NuGet
    /// package: the same library, loaded by that runtime.
    /// </summary>
    public string HostFor(string ortLibrary, string include, string name)
    {
        var gcc = ExternalProcess.Find("gcc") ?? throw new AssertionException("gcc is not on PATH");
        return CompileHost(gcc, Directory.CreateDirectory(Path.Combine(WorkDir, name)).FullName, ortLibrary, include, name);
    }

    private static string CompileHost(string gcc, string workDir, string ortNative, string include, string name)
    {
        Assert.That(File.Exists(ortNative), Is.True, $"the ORT native library is missing: {ortNative}");
        // The package ships libonnxruntime.so whose SONAME is libonnxruntime.so.1; the loader looks for the latter.
        var libDir = Directory.CreateDirectory(Path.Combine(workDir, "lib")).FullName;
        File.CreateSymbolicLink(Path.Combine(libDir, "libonnxruntime.so"), ortNative);
        File.CreateSymbolicLink(Path.Combine(libDir, "libonnxruntime.so.1"), ortNative);
        var host = Path.Combine(workDir, name);
        var source = Path.Combine(TestPaths.RepositoryRoot, "tools", "native-host", "host.c");
        var result = ExternalProcess.Run(gcc,
            ["-std=c11", "-O1", "-Wall", "-Wextra", "-I", include, source, "-o", host,
             "-L", libDir, "-lonnxruntime", "-ldl", $"-Wl,-rpath,{libDir}"],
            CompileTimeout);
        if (result.ExitCode != 0)
        {
            Assert.Fail($"gcc could not compile {source}:\n{result.Tail()}");
        }
        return host;
    }

    /// <summary>Runs the C host on a model file and a folder of input tensors; outputs land in a fresh folder.</summary>
    public (ExternalProcess.Result Result, string OutputDir) RunHost(string modelPath, string inputDir, string? host = null,
        string? library = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var outputDir = Directory.CreateDirectory(Path.Combine(WorkDir, "out-" + Guid.NewGuid().ToString("N"))).FullName;
        var result = ExternalProcess.Run(host ?? Host, [library ?? Library, modelPath, inputDir, outputDir], CompileTimeout, environment);
        return (result, outputDir);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(WorkDir, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is not worth failing a test run over.
        }
    }
}
