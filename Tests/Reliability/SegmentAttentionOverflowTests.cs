using NUnit.Framework;
using OnnxAttention.Tests.SegmentAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Reliability;

/// <summary>
/// SegmentAttention at and past its limits: state sizes past 32-bit index arithmetic (declared by empty sequences,
/// so nothing is allocated), a segment length past 2^24, positions at the end of int64. Each gives an ORT error
/// naming the problem (at session creation for attributes), never a truncated index or a wrong result; and the
/// documented limit itself works.
/// </summary>
[TestFixture]
public class SegmentAttentionOverflowTests
{
    private const int Limit = 1 << 24;

    [Test]
    public void AHeadDimensionPastInt32IsRefusedNotTruncated()
    {
        const long huge = 1L << 33;
        var c = new SegmentAttentionCase(1, 5, 2, 2, 4, 3, SegmentLength: 2);
        using var session = new SegmentAttentionSession(c.Options, pastInputs: 0);
        OrtAssert.RunFails(() => session.Run(c, 0, [], [], [], null, queryShape: [1, 0, 2 * huge], keyShape: [1, 0, 2 * huge], valueShape: [1, 0, 2]),
            $"head_dim would hold {huge} elements");
        TensorAssert.Close(session.Run(c, c.Seq, c.Query, c.Key, c.Value, null).Y, c.Reference(null).Output, Tolerance.Float32,
            "a good call after the refused one");
    }

    // Each tensor alone is small (the sequence is empty); the buffers the node would keep have 2^31 elements each.
    [TestCase(1, 1, Limit, 128, 1, TestName = "segment 2^24 x head_dim 128")]
    [TestCase(1, 1, Limit, 1, 128, TestName = "segment 2^24 x v_head_dim 128")]
    [TestCase(4, 64, 1 << 13, 1024, 1, TestName = "batch 4 x kv heads 64 x segment 2^13 x head_dim 1024")]
    public void AStateOfMoreThanInt32ElementsIsRefused(int batch, int heads, int length, int dk, int dv)
    {
        var c = new SegmentAttentionCase(batch, 0, heads, heads, dk, dv, length);
        using var session = new SegmentAttentionSession(c.Options, pastInputs: 0);
        OrtAssert.RunFails(() => session.Run(c, 0, [], [], [], null), "the segment cache would hold 2147483648 elements");
    }

    [TestCase(Limit + 1L)]
    [TestCase((1L << 32) + 1)] // read as an int, this would be a segment of 1
    public void ASegmentLengthPastItsLimitIsRefusedAtSessionCreation(long length)
    {
        var model = NodeAttributes.WithInt(SegmentAttentionSession.BuildModel(new(2, SegmentLength: 4)), "segment_length", length);
        OrtAssert.SessionCreationFails(model, $"segment_length must be in [1, {Limit}], got {length}");
    }

    [TestCase(0L)]
    [TestCase(1L)]
    public void APositionWhoseEndOverflowsInt64IsRefused(long fromTheEnd)
    {
        var c = new SegmentAttentionCase(2, 3, 2, 1, 4, 3, SegmentLength: 2, History: 5);
        using var session = new SegmentAttentionSession(c.Options);
        var start = c.Past;
        var past = start with { Position = [start.Position[0], long.MaxValue - fromTheEnd] };
        OrtAssert.RunFails(() => session.Run(c, c.Seq, c.Query, c.Key, c.Value, past), $"past_position[1] is {long.MaxValue - fromTheEnd}; adding the sequence length {c.Seq} overflows int64");
        TensorAssert.Close(session.Run(c, c.Seq, c.Query, c.Key, c.Value, start).Y, c.Reference(start).Output, Tolerance.Float32,
            "a good call after the refused one");
    }

    [Test]
    public void TheLargestSegmentWorks()
    {
        // Five tokens from the start: all in segment 0 of any segment of at least five (causal attention).
        var c = new SegmentAttentionCase(1, 5, 2, 1, 3, 2, SegmentLength: Limit);
        using var session = new SegmentAttentionSession(c.Options, pastInputs: 0, presentOutputs: 0);
        var small = c with { SegmentLength = c.Seq };
        TensorAssert.Close(session.Run(c, c.Seq, c.Query, c.Key, c.Value, null).Y, small.Reference(null).Output, Tolerance.Float32,
            "segment 2^24");
    }
}
