using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Operators.Cuda.Ops;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Tests.Runtime;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Cuda;

// Padded calls through the CUDA operator variants end to end, on the host emulation of their kernels
// (EmulatedCudaOperator): every check of TokenMaskFixture (a padded row against the double reference and against the
// variant on the row's real tokens alone, zeros at pads, prefill == split == decode with pads left, right, inside and
// a row all pads, all-ones == no mask, bad masks refused), and the padded call against the CPU kernel's padded call.

/// <summary>The checks every emulated CUDA variant adds to its operator's token_mask fixture.</summary>
internal static class EmulatedTokenMask
{
    public static void RequireEmulator()
    {
        if (EmulatorLauncher.Unavailable is { } why)
        {
            Assert.Ignore($"CUDA host emulation unavailable: {why}");
        }
    }

    /// <summary>
    /// The variant's padded calls (<paramref name="paddedCalls"/> in a session) equal the CPU kernel's, and their rows
    /// went through the launcher: kernel launches, and the gathers, scatters and zeroed pads as its copies and memsets.
    /// </summary>
    public static void SameAsTheCpuKernel<TAttributes>(EmulatedCudaOperator cuda,
        Func<Func<ModelProto, OwnedSession>, List<(TAttributes A, float[] Output, List<TypedTensor> Presents)>> paddedCalls)
    {
        var want = paddedCalls(Cpu);
        var (launches, copies, zeroes) = (cuda.Launches, cuda.Copies, cuda.Zeroes);
        var got = paddedCalls(cuda.Session);
        Assert.That(got, Has.Count.EqualTo(want.Count).And.Count.GreaterThan(0));
        for (var i = 0; i < want.Count; i++)
        {
            TensorAssert.Close(got[i].Output, want[i].Output, Tolerance.Float32Reordered, $"{want[i].A}: output");
            for (var s = 0; s < want[i].Presents.Count; s++)
            {
                if (want[i].Presents[s].Data is long[] counts) Assert.That(got[i].Presents[s].Longs, Is.EqualTo(counts), $"{want[i].A}: present {s}");
                else TensorAssert.Close(got[i].Presents[s].Floats, want[i].Presents[s].Floats, Tolerance.Float32Reordered, $"{want[i].A}: present {s}");
            }
        }
        // Per call: four rows, three of them padded, whose query, key and value are gathered into the row's scratch.
        Assert.That(cuda.Launches - launches, Is.GreaterThanOrEqualTo(4 * want.Count), "a launch per row at least: the CUDA kernels ran, not the CPU ones");
        Assert.That(cuda.Copies - copies, Is.GreaterThanOrEqualTo(3 * 3 * want.Count), "the padded rows' query, key and value went through the launcher's copies");
        Assert.That(cuda.Zeroes - zeroes, Is.GreaterThan(0), "the output at pads was zeroed by the launcher");
        Assert.That(cuda.Outstanding, Is.Zero, "every row's scratch was freed");
    }

    public static OwnedSession Cpu(ModelProto model) => SessionFactory.Create(model, 1);
}

[TestFixture]
[NonParallelizable]
public class EmulatedCudaLinearAttentionTokenMaskTests : LinearAttentionTokenMaskCases
{
    private readonly EmulatedCudaOperator _cuda = new(launchers => new LinearAttentionCudaOperator(OrtElementType.Float, launchers));

    [OneTimeSetUp]
    public void RequireEmulator() => EmulatedTokenMask.RequireEmulator();

    protected override OwnedSession Session(ModelProto model) => _cuda.Session(model);

    [Test]
    public void APaddedCallGivesWhatTheCpuKernelGives() =>
        EmulatedTokenMask.SameAsTheCpuKernel(_cuda, PaddedCalls);
}

[TestFixture]
[NonParallelizable]
public class EmulatedCudaWindowAttentionTokenMaskTests : WindowAttentionTokenMaskCases
{
    private readonly EmulatedCudaOperator _cuda = new(launchers => new WindowAttentionCudaOperator(OrtElementType.Float, launchers));

    [OneTimeSetUp]
    public void RequireEmulator() => EmulatedTokenMask.RequireEmulator();

    protected override OwnedSession Session(ModelProto model) => _cuda.Session(model);

    [Test]
    public void APaddedCallGivesWhatTheCpuKernelGives() =>
        EmulatedTokenMask.SameAsTheCpuKernel(_cuda, PaddedCalls);
}

[TestFixture]
[NonParallelizable]
public class EmulatedCudaHybridAttentionTokenMaskTests : HybridAttentionTokenMaskCases
{
    private readonly EmulatedCudaOperator _cuda = new(launchers => new HybridAttentionCudaOperator(OrtElementType.Float, launchers));

    [OneTimeSetUp]
    public void RequireEmulator() => EmulatedTokenMask.RequireEmulator();

    protected override OwnedSession Session(ModelProto model) => _cuda.Session(model);

    [Test]
    public void APaddedCallGivesWhatTheCpuKernelGives() =>
        EmulatedTokenMask.SameAsTheCpuKernel(_cuda, PaddedCalls);
}

[TestFixture]
[NonParallelizable]
public class EmulatedCudaSegmentAttentionTokenMaskTests : SegmentAttentionTokenMaskCases
{
    private readonly EmulatedCudaOperator _cuda = new(launchers => new SegmentAttentionCudaOperator(OrtElementType.Float, launchers));

    [OneTimeSetUp]
    public void RequireEmulator() => EmulatedTokenMask.RequireEmulator();

    protected override OwnedSession Session(ModelProto model) => _cuda.Session(model);

    [Test]
    public void APaddedCallGivesWhatTheCpuKernelGives() =>
        EmulatedTokenMask.SameAsTheCpuKernel(_cuda, PaddedCalls);
}

[TestFixture]
[NonParallelizable]
public class EmulatedCudaSummaryAttentionTokenMaskTests : SummaryAttentionTokenMaskCases
{
    private readonly EmulatedCudaOperator _cuda = new(launchers => new SummaryAttentionCudaOperator(OrtElementType.Float, launchers));

    [OneTimeSetUp]
    public void RequireEmulator() => EmulatedTokenMask.RequireEmulator();

    protected override OwnedSession Session(ModelProto model) => _cuda.Session(model);

    [Test]
    public void APaddedCallGivesWhatTheCpuKernelGives() =>
        EmulatedTokenMask.SameAsTheCpuKernel(_cuda, PaddedCalls);
}
