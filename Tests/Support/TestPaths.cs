using System.Reflection;

namespace OnnxAttention.Tests.Support;

public static class TestPaths
{
    private static string Metadata(string key) =>
        typeof(TestPaths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().First(a => a.Key == key).Value
        ?? throw new InvalidOperationException($"assembly metadata {key} is missing");

    public static string RepositoryRoot => Path.GetFullPath(Metadata("RepositoryRoot"));

    /// <summary>../shared beside the repository: fixtures used in place, never copied.</summary>
    public static string Shared => Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared"));

    /// <summary>The restored Microsoft.ML.OnnxRuntime package: C headers and the native libonnxruntime.</summary>
    public static string OrtPackage => OrtPackageOf("1.32.0");

    /// <summary>An older ONNX Runtime for hosts of another version (downloaded by the test project, never referenced).</summary>
    public const string OlderOrtVersion = "1.30.0";

    public static string OrtPackageOf(string version) => Path.Combine(Metadata("NuGetPackageRoot"), "microsoft.ml.onnxruntime", version);

    public static string OrtCApiHeader => Path.Combine(OrtPackage, "build", "native", "include", "onnxruntime_c_api.h");
}
