using System.Runtime.InteropServices;
using NUnit.Framework;
using OnnxAttention.Operators.Cuda.Driver;

namespace OnnxAttention.Tests.Cuda;

/// <summary>The driver binding's failure paths, which are all that can run without an NVIDIA driver.</summary>
[TestFixture]
public class CudaDriverTests
{
    [Test]
    public void AMissingLibraryIsReportedWithEveryCandidateAndWhatToDo()
    {
        var (library, failure) = CudaDriver.Load(["/nonexistent/libcuda.so.1", "/nonexistent/other/libcuda.so"]);
        Assert.That(library, Is.Null);
        Assert.That(failure, Does.Contain("/nonexistent/libcuda.so.1: not found or not loadable"));
        Assert.That(failure, Does.Contain("/nonexistent/other/libcuda.so: not found or not loadable"));
        Assert.That(failure, Does.Contain(CudaDriver.PathVariable));
        Assert.That(failure, Does.Contain("NVIDIA GPU"));
    }

    [Test]
    public void ALibraryWithoutTheDriverEntryPointsIsRefusedNamingTheFirstMissingOne()
    {
        Assume.That(OperatingSystem.IsLinux(), "uses libm.so.6 as a library that loads but is not the driver");
        var (library, failure) = CudaDriver.Load(["libm.so.6"]);
        Assert.That(library, Is.Null);
        Assert.That(failure, Does.Contain("libm.so.6: Unable to find an entry point named 'cuInit'"));
    }

    [Test]
    public void WithoutTheDriverInstalledTheProcessWideBindingThrowsAClearException()
    {
        Assume.That(!NativeLibrary.TryLoad("libcuda.so.1", out var handle) || Free(handle), "this machine has libcuda.so.1");
        Assert.That(CudaDriver.IsAvailable, Is.False);
        var e = Assert.Throws<CudaUnavailableException>(() => _ = CudaDriver.Library)!;
        Assert.That(e.Message, Does.Contain("libcuda.so.1: not found or not loadable"));
        Assert.That(e.Message, Does.Contain("the CUDA driver library could not be loaded"));
    }

    [Test]
    public void TheBindingUsesTheDriversVersionedExportNames()
    {
        // cuda.h maps cuMemcpyDtoDAsync to cuMemcpyDtoDAsync_v2 (64-bit sizes); the unversioned symbol is the
        // legacy 32-bit one. The others listed have a single version.
        Assert.That(CudaDriverLibrary.EntryPoints, Does.Contain("cuMemcpyDtoDAsync_v2"));
        Assert.That(CudaDriverLibrary.EntryPoints, Does.Not.Contain("cuMemcpyDtoDAsync"));
        Assert.That(CudaDriverLibrary.EntryPoints, Is.Unique);
    }

    [Test]
    public void AFailedCallNamesTheCallAndCudasDescription()
    {
        var e = new CudaException("cuLaunchKernel(window_attention_decode)", 1, "CUDA_ERROR_INVALID_VALUE", "invalid argument");
        Assert.That(e.Message, Is.EqualTo("cuLaunchKernel(window_attention_decode) failed: CUDA_ERROR_INVALID_VALUE (1): invalid argument"));
        Assert.That((e.Call, e.Result), Is.EqualTo(("cuLaunchKernel(window_attention_decode)", 1)));
    }

    private static bool Free(nint handle)
    {
        NativeLibrary.Free(handle);
        return false;
    }
}
