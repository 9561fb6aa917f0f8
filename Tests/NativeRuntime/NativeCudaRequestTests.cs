using NUnit.Framework;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.NativeRuntime;
using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Tests.NativeRuntime;

/// <summary>
/// Asking for CUDA where there is none (this machine: no GPU, CPU builds of ORT, no CUDA plugin library) gives an
/// error that says what is missing, never a crash; and loading something that is not a usable ORT says why.
/// The CUDA routes themselves are NOT RUN here (no GPU); see docs/cuda-sessions.md.
/// </summary>
[TestFixture]
[NonParallelizable]
public class NativeCudaRequestTests
{
    private static NativeDecoder Decoder(OrtLibrary library, NativeSessionSettings settings) =>
        NativeDecoder.Default(library, AttentionRule.Parse("linear-elu"), settings);

    [TestCase(OrtCores.Managed)]
    [TestCase(OrtCores.Fetched)]
    public void MissingPluginLibraryIsNamed(string core)
    {
        var library = OrtCores.Load(core);
        var missing = Path.Combine(Path.GetTempPath(), "no-such-dir", "libonnxruntime_providers_cuda.so");
        var e = Assert.Throws<FileNotFoundException>(() => Decoder(library, new NativeSessionSettings(NativeExecutionProvider.CudaPlugin, missing)));
        Assert.That(e!.Message, Does.Contain("execution provider library not found").And.Contain(missing));
    }

    [Test]
    public void ALibraryThatIsNoEpPluginIsRefusedByOrtWithItsName()
    {
        var library = OrtCores.Load(OrtCores.Fetched);
        // A real shared library beside the core, but without CreateEpFactories.
        var notAPlugin = Path.Combine(Path.GetDirectoryName(OrtCores.Ort129Library)!, "libonnxruntime_providers_shared.so");
        var e = Assert.Throws<OrtException>(() => library.RegisterExecutionProviderLibrary("not-cuda", notAPlugin));
        Assert.That(e!.Message, Does.Contain("could not register the execution provider library").And.Contain(notAPlugin));
        TestContext.Out.WriteLine(e.Message);
    }

    [TestCase(OrtCores.Managed)]
    [TestCase(OrtCores.Fetched)]
    public void NoCudaDeviceIsReportedWithTheDevicesThereAre(string core)
    {
        var library = OrtCores.Load(core);
        Assert.That(library.EpDevices().Select(d => d.EpName), Does.Contain("CPUExecutionProvider"));
        var e = Assert.Throws<InvalidOperationException>(() => NativeSession.PickDevice(library, "CUDAExecutionProvider", 0));
        Assert.That(e!.Message, Does.Contain("0 CUDAExecutionProvider device(s)").And.Contain("CPUExecutionProvider"));
    }

    [TestCase(OrtCores.Managed)]
    [TestCase(OrtCores.Fetched)]
    public void ClassicCudaOnACpuBuildIsAnOrtError(string core)
    {
        var library = OrtCores.Load(core);
        var e = Assert.Throws<OrtException>(() => Decoder(library, new NativeSessionSettings(NativeExecutionProvider.CudaClassic)));
        Assert.That(e!.Message, Does.Contain("cannot append the CUDA execution provider").And.Contain(library.Version));
        TestContext.Out.WriteLine(e.Message);
        // The library still makes CPU sessions afterwards.
        using var cpu = Decoder(library, NativeSessionSettings.Cpu(1));
        Assert.That(cpu.Session.DeviceMemoryName, Is.EqualTo("Cpu"));
    }

    [Test]
    public void MissingOrtLibraryIsNamed()
    {
        var missing = Path.Combine(Path.GetTempPath(), "no-such-dir", "libonnxruntime.so");
        var e = Assert.Throws<FileNotFoundException>(() => OrtLibrary.Load(missing));
        Assert.That(e!.Message, Does.Contain(missing));
    }

    [Test]
    public void ALibraryThatIsNotOrtIsRefused()
    {
        OrtCores.Require129();
        var notOrt = Path.Combine(Path.GetDirectoryName(OrtCores.Ort129Library)!, "libonnxruntime_providers_shared.so");
        var e = Assert.Throws<InvalidDataException>(() => OrtLibrary.Load(notOrt));
        Assert.That(e!.Message, Does.Contain("does not export OrtGetApiBase"));
    }

    [Test]
    public void SettingsParseTheCliWords()
    {
        Assert.That(NativeSessionSettings.Parse("cpu", null, 2), Is.EqualTo(NativeSessionSettings.Cpu(2)));
        Assert.That(NativeSessionSettings.Parse("cuda", null, 0).Provider, Is.EqualTo(NativeExecutionProvider.CudaClassic));
        Assert.That(NativeSessionSettings.Parse("CUDA", "/x/libonnxruntime_providers_cuda.so", 0),
            Is.EqualTo(new NativeSessionSettings(NativeExecutionProvider.CudaPlugin, "/x/libonnxruntime_providers_cuda.so")));
        Assert.That(() => NativeSessionSettings.Parse("cpu", "/x/p.so", 0), Throws.ArgumentException.With.Message.Contains("--cuda-plugin needs --ep cuda"));
        Assert.That(() => NativeSessionSettings.Parse("rocm", null, 0), Throws.ArgumentException.With.Message.Contains("unknown execution provider 'rocm'"));
    }
}
