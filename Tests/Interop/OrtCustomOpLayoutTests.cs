using System.Runtime.InteropServices;
using NUnit.Framework;
using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Tests.Interop;

[TestFixture]
public unsafe class OrtCustomOpLayoutTests
{
    [Test]
    public void MatchesTheCLayout()
    {
        Assert.That(sizeof(OrtCustomOpStruct), Is.EqualTo(208));
        Assert.That(Marshal.OffsetOf<OrtCustomOpStruct>(nameof(OrtCustomOpStruct.CreateKernel)), Is.EqualTo((nint)8));
        Assert.That(Marshal.OffsetOf<OrtCustomOpStruct>(nameof(OrtCustomOpStruct.KernelDestroy)), Is.EqualTo((nint)72));
        Assert.That(Marshal.OffsetOf<OrtCustomOpStruct>(nameof(OrtCustomOpStruct.CreateKernelV2)), Is.EqualTo((nint)136));
        Assert.That(Marshal.OffsetOf<OrtCustomOpStruct>(nameof(OrtCustomOpStruct.InferOutputShapeFn)), Is.EqualTo((nint)152));
        Assert.That(Marshal.OffsetOf<OrtCustomOpStruct>(nameof(OrtCustomOpStruct.ReleaseAliasMap)), Is.EqualTo((nint)200));
    }
}
