using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.WindowAttention;

/// <summary>Bad models and inputs give an ORT error naming the problem; the process and the session survive.</summary>
[TestFixture]
public class WindowAttentionBadInputTests
{
    private static readonly WindowAttentionCase Good = new(2, 5, 4, 2, 8, 6, 3, Sinks: 2, History: 4);

    private static void AssertStillWorks(WindowAttentionSession session)
    {
        var c = Good;
        var past = c.Past;
        var got = session.Run(c, c.Seq, c.Query, c.Key, c.Value, past);
        TensorAssert.Close(got.Y, c.Reference(past).Output, Tolerance.Float32, "run after a failure");
    }

    private static void AssertSessionCreationFails(WindowAttentionNode.Options options, string expectedFragment) =>
        OrtAssert.SessionCreationFails(WindowAttentionSession.BuildModel(options, pastInputs: 0), expectedFragment);

    [Test]
    public void CacheWithoutTheSinkRows()
    {
        // A cache of window rows only, handed to a node with 2 sinks.
        using var s = new WindowAttentionSession(Good.Options);
        var c = Good;
        var past = c.Past with { Key = new float[c.Batch * c.KvHeads * c.Window * c.Dk] };
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, past, pastKeyShape: [c.Batch, c.KvHeads, c.Window, c.Dk]),
            "past_key_cache has shape [2, 2, 3, 8]; expected [batch, kv_num_heads, sinks + window, head_dim] = [2, 2, 5, 8]");
        AssertStillWorks(s);
    }

    [Test]
    public void PartialState()
    {
        using var s = new WindowAttentionSession(Good.Options, pastInputs: 2);
        var c = Good;
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, c.Past),
            "got past_key_cache, past_value_cache but not past_position");
        using var full = new WindowAttentionSession(Good.Options);
        AssertStillWorks(full);
    }

    [TestCase(0, "window must be in [1, 16777216], got 0")]
    [TestCase(-5, "window must be in [1, 16777216], got -5")]
    public void WindowNotPositive(int window, string message) =>
        AssertSessionCreationFails(Good.Options with { Window = window }, message);

    [Test]
    public void NegativeSinks() =>
        AssertSessionCreationFails(Good.Options with { Sinks = -1 }, "sinks must be in [0, 16777216], got -1");

    [Test]
    public void NegativeSoftcap() =>
        AssertSessionCreationFails(Good.Options with { Softcap = -2f }, "softcap must be finite and non-negative (0 = off), got -2");

    [Test]
    public void NonFiniteScale() =>
        AssertSessionCreationFails(Good.Options with { Scale = float.NaN }, "scale must be finite");

    [TestCase(4, 3, "kv_num_heads must be positive and divide q_num_heads (4), got 3")]
    [TestCase(0, 0, "q_num_heads must be in [1, 65536], got 0")]
    [TestCase(2, 4, "kv_num_heads must be positive and divide q_num_heads (2), got 4")]
    public void BadHeadCounts(int q, int kv, string message) =>
        AssertSessionCreationFails(new WindowAttentionNode.Options(q, 4, kv), message);

    [Test]
    public void MissingWindowAttribute() =>
        OrtAssert.SessionCreationFailsWithout(WindowAttentionSession.BuildModel(Good.Options, pastInputs: 0), "window",
            "required attribute 'window' is missing");
}
