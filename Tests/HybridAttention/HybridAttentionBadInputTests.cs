using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.HybridAttention;

/// <summary>Bad models and inputs give an ORT error naming the problem; the process and the session survive.</summary>
[TestFixture]
public class HybridAttentionBadInputTests
{
    private static readonly HybridAttentionCase Good = new(2, 5, 4, 2, 8, 6, 3, "linear", History: 4);

    private static void AssertStillWorks(HybridAttentionSession session, HybridAttentionCase? c = null)
    {
        c ??= Good;
        var past = c.Past;
        var got = session.Run(c, c.Seq, c.Query, c.Key, c.Value, past);
        TensorAssert.Close(got.Y, c.Reference(past).Output, Tolerance.Float32, "run after a failure");
    }

    private static void AssertSessionCreationFails(HybridAttentionNode.Options options, string expectedFragment) =>
        OrtAssert.SessionCreationFails(HybridAttentionSession.BuildModel(options, pastInputs: 0), expectedFragment);

    [Test]
    public void CacheOfWrongWindow()
    {
        using var s = new HybridAttentionSession(Good.Options);
        var c = Good;
        var past = c.Past with { Key = new float[c.Batch * c.KvHeads * 4 * c.Dk] };
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, past, pastKeyShape: [c.Batch, c.KvHeads, 4, c.Dk]),
            "past_key has shape [2, 2, 4, 8]; expected [batch, kv_num_heads, window, head_dim] = [2, 2, 3, 8]");
        AssertStillWorks(s);
    }

    [Test]
    public void CompressedValueOfTheOtherKind()
    {
        // A mean-kind state (one value row) handed to a linear node.
        using var s = new HybridAttentionSession(Good.Options);
        var c = Good;
        var past = c.Past with { CompressedValue = new float[c.Batch * c.KvHeads * c.Dv] };
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, past, compressedValueShape: [c.Batch, c.KvHeads, 1, c.Dv]),
            "past_compressed_value has shape [2, 2, 1, 6]; expected [batch, kv_num_heads, head_dim, v_head_dim] (compress=linear) = [2, 2, 8, 6]");
        AssertStillWorks(s);
    }

    [Test]
    public void CompressedKeyOfWrongShape()
    {
        var c = Good with { Compress = "mean" };
        using var s = new HybridAttentionSession(c.Options);
        var past = c.Past with { CompressedKey = new float[c.Batch * c.KvHeads * c.Dv] };
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, past, compressedKeyShape: [c.Batch, c.KvHeads, c.Dv]),
            "past_compressed_key has shape [2, 2, 6]; expected [batch, kv_num_heads, head_dim] = [2, 2, 8]");
        AssertStillWorks(s, c);
    }

    [Test]
    public void PartialState()
    {
        using var s = new HybridAttentionSession(Good.Options, pastInputs: 3);
        var c = Good;
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, c.Past),
            "got past_key, past_value, past_position but not past_compressed_key, past_compressed_value");
        using var full = new HybridAttentionSession(Good.Options);
        AssertStillWorks(full);
    }

    [TestCase("softmax", "unknown compress 'softmax'; expected one of: linear, mean")]
    [TestCase("Linear", "unknown compress 'Linear'")]
    public void UnknownCompressKind(string kind, string message) =>
        AssertSessionCreationFails(Good.Options with { Compress = kind }, message);

    [TestCase(0, "window must be in [1, 16777216], got 0")]
    [TestCase(-5, "window must be in [1, 16777216], got -5")]
    public void WindowNotPositive(int window, string message) =>
        AssertSessionCreationFails(Good.Options with { Window = window }, message);

    [Test]
    public void NegativeEpsilon() =>
        AssertSessionCreationFails(Good.Options with { Epsilon = -1e-3f }, "epsilon must be finite and non-negative");

    [TestCase(4, 3, "kv_num_heads must be positive and divide q_num_heads (4), got 3")]
    [TestCase(0, 0, "q_num_heads must be in [1, 65536], got 0")]
    [TestCase(2, 4, "kv_num_heads must be positive and divide q_num_heads (2), got 4")]
    public void BadHeadCounts(int q, int kv, string message) =>
        AssertSessionCreationFails(new HybridAttentionNode.Options(q, 4, kv), message);

    [Test]
    public void MissingWindowAttribute() =>
        OrtAssert.SessionCreationFailsWithout(HybridAttentionSession.BuildModel(Good.Options, pastInputs: 0), "window",
            "required attribute 'window' is missing");
}
