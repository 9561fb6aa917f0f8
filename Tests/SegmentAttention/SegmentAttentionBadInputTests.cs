using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SegmentAttention;

/// <summary>Bad models and inputs give an ORT error naming the problem; the process and the session survive.</summary>
[TestFixture]
public class SegmentAttentionBadInputTests
{
    private static readonly SegmentAttentionCase Good = new(2, 5, 4, 2, 8, 6, 3, History: 4);

    private static void AssertStillWorks(SegmentAttentionSession session)
    {
        var c = Good;
        var past = c.Past;
        var got = session.Run(c, c.Seq, c.Query, c.Key, c.Value, past);
        TensorAssert.Close(got.Y, c.Reference(past).Output, Tolerance.Float32, "run after a failure");
    }

    private static void AssertSessionCreationFails(SegmentAttentionNode.Options options, string expectedFragment) =>
        OrtAssert.SessionCreationFails(SegmentAttentionSession.BuildModel(options, pastInputs: 0), expectedFragment);

    [Test]
    public void MemoryOfWrongSegmentLength()
    {
        using var s = new SegmentAttentionSession(Good.Options);
        var c = Good;
        var past = c.Past with { MemoryKey = new float[c.Batch * c.KvHeads * 4 * c.Dk] };
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, past, memoryKeyShape: [c.Batch, c.KvHeads, 4, c.Dk]),
            "past_memory_key has shape [2, 2, 4, 8]; expected [batch, kv_num_heads, segment_length, head_dim] = [2, 2, 3, 8]");
        AssertStillWorks(s);
    }

    [Test]
    public void SegmentValueOfWrongHeadDim()
    {
        using var s = new SegmentAttentionSession(Good.Options);
        var c = Good;
        var past = c.Past with { SegmentValue = new float[c.Batch * c.KvHeads * c.SegmentLength * c.Dk] };
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, past, segmentValueShape: [c.Batch, c.KvHeads, c.SegmentLength, c.Dk]),
            "past_segment_value has shape [2, 2, 3, 8]; expected [batch, kv_num_heads, segment_length, v_head_dim] = [2, 2, 3, 6]");
        AssertStillWorks(s);
    }

    [TestCase(1)]
    [TestCase(4)]
    public void PartialState(int given)
    {
        using var s = new SegmentAttentionSession(Good.Options, pastInputs: given);
        var c = Good;
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, c.Past),
            given == 1
                ? "got past_memory_key but not past_memory_value, past_segment_key, past_segment_value, past_position"
                : "got past_memory_key, past_memory_value, past_segment_key, past_segment_value but not past_position");
        using var full = new SegmentAttentionSession(Good.Options);
        AssertStillWorks(full);
    }

    [TestCase(0, "segment_length must be in [1, 16777216], got 0")]
    [TestCase(-3, "segment_length must be in [1, 16777216], got -3")]
    [TestCase(1 << 25, "segment_length must be in [1, 16777216], got 33554432")]
    public void SegmentLengthOutOfRange(int length, string message) =>
        AssertSessionCreationFails(Good.Options with { SegmentLength = length }, message);

    [TestCase(4, 3, "kv_num_heads must be positive and divide q_num_heads (4), got 3")]
    [TestCase(0, 0, "q_num_heads must be in [1, 65536], got 0")]
    [TestCase(2, 4, "kv_num_heads must be positive and divide q_num_heads (2), got 4")]
    public void BadHeadCounts(int q, int kv, string message) =>
        AssertSessionCreationFails(new SegmentAttentionNode.Options(q, 4, kv), message);

    [Test]
    public void NonFiniteScale() =>
        AssertSessionCreationFails(Good.Options with { Scale = float.NaN }, "scale must be finite");

    [Test]
    public void MissingSegmentLengthAttribute() =>
        OrtAssert.SessionCreationFailsWithout(SegmentAttentionSession.BuildModel(Good.Options, pastInputs: 0), "segment_length",
            "required attribute 'segment_length' is missing");
}
