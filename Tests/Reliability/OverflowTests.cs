using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Reliability;

/// <summary>
/// Sizes past 32-bit index arithmetic, declared by empty tensors (a zero-length sequence) so nothing has to be
/// allocated: the state such a head dimension implies cannot exist, and the operator must say so instead of
/// truncating an index.
/// </summary>
[TestFixture]
public class OverflowTests
{
    [Test]
    public void AHeadDimensionPastInt32IsRefusedNotTruncated()
    {
        const long huge = (1L << 33) * 2; // 2 heads of 2^33 each
        using var session = new LinearAttentionSession(new LinearAttentionNode.Options(2), withPast: false, declareShapes: false);
        var e = Assert.Throws<OnnxRuntimeException>(() => session.Run(1, 0, [], [], [],
            queryShape: [1, 0, huge], keyShape: [1, 0, huge], valueShape: [1, 0, 2]));
        Assert.That(e!.Message, Does.Contain("would hold").And.Contain("elements"));
    }
}
