using NUnit.Framework;
using OnnxAttention.Host.NativeRuntime;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.NativeRuntime;

/// <summary>
/// The two ONNX Runtime cores the C-API path is tested with, in this one process: the managed binding's 1.32.0
/// (NuGet) and the 1.29.0 core fetched by tools/ort-1.29/fetch.sh (.ci/run calls it). Without the latter, tests that
/// need it are ignored with the reason (the fetch's own error when .ci/run recorded one).
/// </summary>
public static class OrtCores
{
    public const string Managed = "1.32.0";
    public const string Fetched = "1.29.0";

    public static string Ort129Root => Path.Combine(TestPaths.RepositoryRoot, "artifacts", "ort-1.29");

    public static string Ort129Library => Path.Combine(Ort129Root, "lib", "libonnxruntime.so");

    public static string Ort129Include => Path.Combine(Ort129Root, "include");

    /// <summary>Written by .ci/run when the fetch failed.</summary>
    private static string FetchError => Path.Combine(TestPaths.RepositoryRoot, "artifacts", "ort-1.29.fetch-error");

    /// <summary>Ignores the calling test when the 1.29 core has not been fetched.</summary>
    public static void Require129()
    {
        if (File.Exists(Ort129Library) && File.Exists(Path.Combine(Ort129Include, "onnxruntime_c_api.h")))
        {
            return;
        }
        var why = File.Exists(FetchError) ? $"fetching it failed: {File.ReadAllText(FetchError).Trim()}" : "run tools/ort-1.29/fetch.sh (.ci/run does)";
        Assert.Ignore($"ONNX Runtime 1.29 core not found at {Ort129Library}: {why}");
    }

    public static OrtLibrary Load(string version)
    {
        if (version == Managed)
        {
            return OrtLibrary.ManagedBindingLibrary();
        }
        Require129();
        return OrtLibrary.Load(Ort129Library);
    }
}
