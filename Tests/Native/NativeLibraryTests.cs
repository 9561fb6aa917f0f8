using System.Text.RegularExpressions;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Operators.Registration;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Native;

/// <summary>
/// libonnxattention.so (NativeAOT, no .NET where it runs) loaded by a plain C program through ORT's own
/// RegisterCustomOpsLibrary_V2: every registered operator gives what the in-process registration gives.
/// </summary>
[TestFixture]
[NonParallelizable]
public class NativeLibraryTests
{
    private NativeBuild _build = null!;
    private AllOperatorsModel _all = null!;
    private string _modelPath = "";

    [OneTimeSetUp]
    public void BuildLibraryAndHost()
    {
        _build = NativeBuild.Create();
        _all = AllOperatorsModel.Build();
        _modelPath = Path.Combine(_build.WorkDir, "all_operators.onnx");
        File.WriteAllBytes(_modelPath, _all.Model.ToByteArray());
    }

    [OneTimeTearDown]
    public void CleanUp() => _build?.Dispose();

    private string WriteInputs(IReadOnlyDictionary<string, TypedTensor> inputs)
    {
        var dir = Directory.CreateDirectory(Path.Combine(_build.WorkDir, "in-" + Guid.NewGuid().ToString("N"))).FullName;
        foreach (var (name, tensor) in inputs) TensorFile.Write(Path.Combine(dir, name + ".tensor"), tensor);
        return dir;
    }

    [Test]
    public void ModelCoversEveryRegisteredOperator()
    {
        Assert.That(_all.Missing.Select(AllOperatorsModel.Prefix), Is.Empty,
            "operators without a sample in Tests/Native/AllOperatorsModel.cs: add one so the native library is checked for them");
        Assert.That(_all.Covered, Is.EquivalentTo(AllOperatorsModel.CpuOperators));
    }

    [Test]
    public void CHostGivesTheInProcessResultsForEveryOperator()
    {
        var (result, outputDir) = _build.RunHost(_modelPath, WriteInputs(_all.Inputs));
        Assert.That(result.ExitCode, Is.EqualTo(0), $"C host failed:\n{result.Tail()}");
        Assert.That(result.StdOut, Does.Contain($"(ONNX Runtime {OrtEnv.Instance().GetVersionString()})"));
        AssertInProcessResults(outputDir);
    }

    /// <summary>
    /// Issue 8: hosts of other ONNX Runtime versions load the library (it asks for OrtApi 24, ORT 1.24): here the
    /// oldest release NuGet serves, which the test project downloads without referencing.
    /// </summary>
    [Test]
    public void CHostOnAnOlderOrtGivesTheInProcessResultsForEveryOperator()
    {
        var package = TestPaths.OrtPackageOf(TestPaths.OlderOrtVersion);
        var host = _build.HostFor(Path.Combine(package, "runtimes", "linux-x64", "native", "libonnxruntime.so"),
            Path.Combine(package, "build", "native", "include"), "onnxattention-host-older");
        var (result, outputDir) = _build.RunHost(_modelPath, WriteInputs(_all.Inputs), host);
        Assert.That(result.ExitCode, Is.EqualTo(0), $"C host on ORT {TestPaths.OlderOrtVersion} failed:\n{result.Tail()}");
        Assert.That(result.StdOut, Does.Contain($"(ONNX Runtime {TestPaths.OlderOrtVersion})"), "the host ran on the older core");
        AssertInProcessResults(outputDir);
    }

    private void AssertInProcessResults(string outputDir)
    {
        using var inProcess = new TypedModelRunner(_all.Model, intraOpThreads: 1);
        var want = inProcess.Run(_all.Inputs, [.. _all.Outputs]);
        var bitwise = 0;
        var total = 0;
        foreach (var name in _all.Outputs)
        {
            var got = TensorFile.Read(Path.Combine(outputDir, name + ".tensor"));
            var expected = want[name];
            Assert.That(got.Shape, Is.EqualTo(expected.Shape), $"{name}: shape");
            Assert.That(got.Data.GetType(), Is.EqualTo(expected.Data.GetType()), $"{name}: element type");
            switch (got.Data)
            {
                case long[] l:
                    Assert.That(l, Is.EqualTo(expected.Longs), $"{name}: int64 values");
                    bitwise += l.Length;
                    total += l.Length;
                    break;
                case float[] f:
                    TensorAssert.Close(f, expected.Floats, Tolerance.Float32, name);
                    bitwise += f.Zip(expected.Floats).Count(p => BitConverter.SingleToInt32Bits(p.First) == BitConverter.SingleToInt32Bits(p.Second));
                    total += f.Length;
                    break;
                case Float16[] h:
                    var e = (Float16[])expected.Data;
                    // Half outputs are rounded from float32 sums, so a last-place difference there shows up at half's precision.
                    TensorAssert.Close(h.Select(x => (float)x).ToArray(), e.Select(x => (float)x).ToArray(), Tolerance.Float16, name);
                    bitwise += h.Zip(e).Count(p => p.First.value == p.Second.value);
                    total += h.Length;
                    break;
                case BFloat16[] bf:
                    var ebf = (BFloat16[])expected.Data;
                    TensorAssert.Close(bf.Select(x => (float)x).ToArray(), ebf.Select(x => (float)x).ToArray(), Tolerance.BFloat16, name);
                    bitwise += bf.Zip(ebf).Count(p => p.First.value == p.Second.value);
                    total += bf.Length;
                    break;
            }
        }
        // NativeAOT compiles for a baseline x64 while the JIT uses this CPU's widest vectors, so sums may be reordered.
        TestContext.Out.WriteLine($"{_all.Outputs.Count} outputs of {_all.Covered.Count} operator bindings: {bitwise} of {total} elements bitwise equal");
        Assert.That(total, Is.GreaterThan(0));
    }

    [Test]
    public void BadInputFailsTheCHostWithOurMessage()
    {
        var op = OperatorRegistry.Operators.First(o => o.Schema.Name == "LinearAttention");
        var name = $"{AllOperatorsModel.Prefix(op)}_past_state";
        var good = _all.Inputs[name];
        var bad = new Dictionary<string, TypedTensor>(_all.Inputs)
        {
            // Same element count, head_dim and v_head_dim swapped: only the kernel's own check can see it.
            [name] = new TypedTensor(good.Data, [good.Shape[0], good.Shape[1], good.Shape[3], good.Shape[2]]),
        };
        const string Expected = "past_state has shape [2, 2, 6, 8]; expected [batch, kv_num_heads, head_dim, v_head_dim] = [2, 2, 8, 6]";

        var (result, _) = _build.RunHost(_modelPath, WriteInputs(bad));

        Assert.That(result.ExitCode, Is.EqualTo(1), $"C host output:\n{result.Tail()}");
        Assert.That(result.StdErr, Does.Contain(Expected));
        // The same words as the in-process registration gives a managed caller.
        using var inProcess = new TypedModelRunner(_all.Model, intraOpThreads: 1);
        var e = Assert.Throws<OnnxRuntimeException>(() => inProcess.Run(bad, [.. _all.Outputs]));
        Assert.That(e!.Message, Does.Contain(Expected));
    }

    [Test]
    public void TooOldRuntimeIsToldWhy()
    {
        var result = ExternalProcess.Run(_build.Host, ["--simulate-old-runtime", _build.Library], TimeSpan.FromMinutes(1));
        Assert.That(result.ExitCode, Is.EqualTo(1), $"C host output:\n{result.Tail()}");
        Assert.That(result.StdErr, Does.Contain("this ONNX Runtime (1.23.2) does not provide OrtApi version 24; ONNX Runtime 1.24 or newer is needed"));
    }

    /// <summary>
    /// The loader loads the build ONNXATTENTION_ISA names, from its own folder: with only the v2 build beside it, v2
    /// computes what the in-process registration does and v3 is an ORT error naming the missing file.
    /// </summary>
    [Test]
    public void LoaderRunsTheBuildItIsToldAndNamesAMissingOne()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_build.WorkDir, "only-v2")).FullName;
        var loader = Path.Combine(folder, "libonnxattention.so");
        File.Copy(_build.Library, loader);
        File.Copy(_build.Build("x86-64-v2"), Path.Combine(folder, "libonnxattention-x86-64-v2.so"));
        var inputs = WriteInputs(_all.Inputs);

        var (v2, outputDir) = _build.RunHost(_modelPath, inputs, library: loader, environment: Isa("x86-64-v2"));
        Assert.That(v2.ExitCode, Is.EqualTo(0), $"C host with the v2 build:\n{v2.Tail()}");
        AssertInProcessResults(outputDir);

        var (v3, _) = _build.RunHost(_modelPath, inputs, library: loader, environment: Isa("x86-64-v3"));
        Assert.That(v3.ExitCode, Is.EqualTo(1), v3.Tail());
        Assert.That(v3.StdErr, Does.Contain($"OnnxAttention: cannot load {Path.Combine(folder, "libonnxattention-x86-64-v3.so")}"));

        var (bad, _) = _build.RunHost(_modelPath, inputs, library: loader, environment: Isa("avx512"));
        Assert.That(bad.ExitCode, Is.EqualTo(1), bad.Tail());
        Assert.That(bad.StdErr, Does.Contain("ONNXATTENTION_ISA is 'avx512'; expected x86-64-v2 or x86-64-v3"));
    }

    /// <summary>Unforced, the loader takes the v3 build on a CPU that has x86-64-v3 and the v2 build on one without.</summary>
    [Test]
    public void LoaderPicksTheBuildThisCpuRuns()
    {
        var v3 = System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported &&
            System.Runtime.Intrinsics.X86.Bmi1.IsSupported && System.Runtime.Intrinsics.X86.Bmi2.IsSupported &&
            System.Runtime.Intrinsics.X86.Lzcnt.IsSupported;
        var expected = v3 ? "x86-64-v3" : "x86-64-v2";
        // A folder holding only the loader: the error names the build it chose.
        var folder = Directory.CreateDirectory(Path.Combine(_build.WorkDir, "loader-alone")).FullName;
        var loader = Path.Combine(folder, "libonnxattention.so");
        File.Copy(_build.Library, loader);

        var (result, _) = _build.RunHost(_modelPath, WriteInputs(_all.Inputs), library: loader, environment: Isa(""));

        Assert.That(result.ExitCode, Is.EqualTo(1), result.Tail());
        Assert.That(result.StdErr, Does.Contain($"cannot load {Path.Combine(folder, $"libonnxattention-{expected}.so")}"));
    }

    private static Dictionary<string, string> Isa(string value) => new() { ["ONNXATTENTION_ISA"] = value };

    [TestCaseSource(nameof(FileNames))]
    public void LibraryExportsOnlyRegisterCustomOps(string file)
    {
        var nm = ExternalProcess.Find("nm");
        Assert.That(nm, Is.Not.Null, "nm (binutils) is not on PATH: apt-get install -y binutils");
        var result = ExternalProcess.Run(nm!, ["-D", "--defined-only", Path.Combine(Path.GetDirectoryName(_build.Library)!, file)], TimeSpan.FromMinutes(1));
        Assert.That(result.ExitCode, Is.EqualTo(0), result.Tail());
        // Lines are "address type name[@@version]"; type A marks the version node (V1.0) itself, not a symbol.
        var exports = result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length == 3 && f[1] != "A")
            .Select(f => Regex.Replace(f[2], "@.*$", ""))
            .ToList();
        Assert.That(exports, Is.EqualTo(new[] { "RegisterCustomOps" }), result.StdOut);
    }

    private static IEnumerable<string> FileNames() => NativeBuild.Builds.Select(isa => $"libonnxattention-{isa}.so").Prepend("libonnxattention.so");

    [TestCaseSource(nameof(FileNames))]
    public void LibraryNeedsNoDotNetAndStaysLoaded(string file)
    {
        var readelf = ExternalProcess.Find("readelf");
        Assert.That(readelf, Is.Not.Null, "readelf (binutils) is not on PATH: apt-get install -y binutils");
        var result = ExternalProcess.Run(readelf!, ["-d", Path.Combine(Path.GetDirectoryName(_build.Library)!, file)], TimeSpan.FromMinutes(1));
        Assert.That(result.ExitCode, Is.EqualTo(0), result.Tail());
        var needed = Regex.Matches(result.StdOut, @"\(NEEDED\)\s+Shared library: \[([^\]]+)\]").Select(m => m.Groups[1].Value).ToList();
        Assert.That(needed, Is.SubsetOf(new[] { "libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2", "libdl.so.2", "libpthread.so.0", "librt.so.1" }),
            "only the C library; no libonnxruntime, libstdc++ or .NET runtime");
        // ORT dlcloses custom-op libraries; a NativeAOT runtime must never be unmapped.
        Assert.That(result.StdOut, Does.Match(@"FLAGS_1\)\s+Flags:.*NODELETE"));
    }
}
