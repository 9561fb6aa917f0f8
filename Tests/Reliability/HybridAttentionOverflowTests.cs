using NUnit.Framework;
using OnnxAttention.Tests.HybridAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Reliability;

/// <summary>
/// HybridAttention at and past its limits: state sizes past 32-bit index arithmetic (declared by empty sequences, so
/// nothing is allocated), a window past 2^24, positions at the end of int64. Each gives an ORT error naming the
/// problem (at session creation for attributes), never a truncated index or a wrong result; and the documented
/// limit itself works.
/// </summary>
[TestFixture]
public class HybridAttentionOverflowTests
{
    private const int Limit = 1 << 24;

    [TestCase("linear")]
    [TestCase("mean")]
    public void AHeadDimensionPastInt32IsRefusedNotTruncated(string compress)
    {
        const long huge = 1L << 33;
        var c = new HybridAttentionCase(1, 5, 2, 2, 4, 3, Window: 2, compress);
        using var session = new HybridAttentionSession(c.Options, pastInputs: 0);
        OrtAssert.RunFails(() => session.Run(c, 0, [], [], [], null, queryShape: [1, 0, 2 * huge], keyShape: [1, 0, 2 * huge], valueShape: [1, 0, 2]),
            $"head_dim would hold {huge} elements");
        TensorAssert.Close(session.Run(c, c.Seq, c.Query, c.Key, c.Value, null).Y, c.Reference(null).Output, Tolerance.Float32,
            "a good call after the refused one");
    }

    // Each tensor alone is small (the sequence is empty); the cache the node would keep has 2^31 elements.
    [TestCase("mean", 128, 1, TestName = "window 2^24 x head_dim 128")]
    [TestCase("linear", 1, 128, TestName = "window 2^24 x v_head_dim 128")]
    public void ACacheOfMoreThanInt32ElementsIsRefused(string compress, int dk, int dv)
    {
        var c = new HybridAttentionCase(1, 0, 1, 1, dk, dv, Limit, compress);
        using var session = new HybridAttentionSession(c.Options, pastInputs: 0);
        OrtAssert.RunFails(() => session.Run(c, 0, [], [], [], null), "the KV cache would hold 2147483648 elements");
    }

    [Test]
    public void ALinearStateOfMoreThanInt32ElementsIsRefused()
    {
        // head_dim x v_head_dim = 46341^2 = 2147488281 > 2^31 - 1: only the linear state [head_dim, v_head_dim]
        // is too large; the mean state of the same dims is one row and fits.
        const int d = 46341;
        var linear = new HybridAttentionCase(1, 0, 1, 1, d, d, 1, "linear");
        using (var session = new HybridAttentionSession(linear.Options, pastInputs: 0))
        {
            OrtAssert.RunFails(() => session.Run(linear, 0, [], [], [], null), "the compressed value state would hold 2147488281 elements");
        }
        var mean = linear with { Compress = "mean" };
        using (var session = new HybridAttentionSession(mean.Options, pastInputs: 0))
        {
            var got = session.Run(mean, 0, [], [], [], null);
            Assert.That(got.All["present_compressed_value"].Shape, Is.EqualTo(new long[] { 1, 1, 1, d }));
        }
    }

    [TestCase(Limit + 1L)]
    [TestCase((1L << 32) + 1)] // read as an int, this would be a window of 1
    public void AWindowPastItsLimitIsRefusedAtSessionCreation(long window)
    {
        var model = NodeAttributes.WithInt(HybridAttentionSession.BuildModel(new(2, Window: 4)), "window", window);
        OrtAssert.SessionCreationFails(model, $"window must be in [1, {Limit}], got {window}");
    }

    [TestCase("linear")]
    [TestCase("mean")]
    public void APositionWhoseEndOverflowsInt64IsRefused(string compress)
    {
        var c = new HybridAttentionCase(2, 3, 2, 1, 4, 3, Window: 2, compress, History: 4);
        using var session = new HybridAttentionSession(c.Options);
        foreach (var fromTheEnd in new long[] { 0, 1 })
        {
            var past = c.ZeroState with { Position = [5, long.MaxValue - fromTheEnd] };
            OrtAssert.RunFails(() => session.Run(c, c.Seq, c.Query, c.Key, c.Value, past), $"past_position[1] is {long.MaxValue - fromTheEnd}; adding the sequence length {c.Seq} overflows int64");
        }
        // The last positions that fit: the call's last token at 2^63 - 2, the present position 2^63 - 1.
        var given = c.Past;
        var atTheEnd = given with { Position = [given.Position[0], long.MaxValue - c.Seq] };
        var got = session.Run(c, c.Seq, c.Query, c.Key, c.Value, atTheEnd);
        TensorAssert.Close(got.Y, c.Reference(atTheEnd).Output, Tolerance.Float32, "a good call after the refused ones");
        Assert.That(got.Present!.Position, Is.EqualTo(new[] { given.Position[0] + c.Seq, long.MaxValue }));
    }

    [TestCase("linear")]
    [TestCase("mean")]
    public void TheLargestWindowWorks(string compress)
    {
        // Five tokens from the start: nothing is evicted from any window of at least five (causal attention).
        var c = new HybridAttentionCase(1, 5, 2, 1, 3, 2, Window: Limit, compress);
        using var session = new HybridAttentionSession(c.Options, pastInputs: 0, presentOutputs: 0);
        var small = c with { Window = c.Seq };
        TensorAssert.Close(session.Run(c, c.Seq, c.Query, c.Key, c.Value, null).Y, small.Reference(null).Output, Tolerance.Float32,
            "window 2^24");
    }
}
