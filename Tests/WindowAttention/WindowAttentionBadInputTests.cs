using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.WindowAttention;

/// <summary>Bad models and inputs give an ORT error naming the problem; the process and the session survive.</summary>
[TestFixture]
public class WindowAttentionBadInputTests : CacheOpBadInputFixture<WindowAttentionCase, WindowState, WindowAttentionSession>
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

    protected override WindowAttentionCase GoodCase => Good;

    protected override WindowAttentionSession Open(bool declareShapes) => new(Good.Options, declareShapes: declareShapes);

    protected override void Run(WindowAttentionSession session, float[] query, float[] key, float[] value,
        long[]? queryShape = null, long[]? keyShape = null, long[]? valueShape = null) =>
        session.Run(Good, Good.Seq, query, key, value, Good.Past, queryShape: queryShape, keyShape: keyShape, valueShape: valueShape);

    protected override void AssertWorksAfterFailure(WindowAttentionSession session) => AssertStillWorks(session);

    [Test]
    public void QueryOfWrongRank() =>
        QueryOfWrongRankFails("query must have rank 3 [batch, sequence, q_num_heads * head_dim], got shape [10, 32]");

    [Test]
    public void KeyOfWrongRank() =>
        KeyOfWrongRankFails("key must have rank 3 [batch, sequence, kv_num_heads * head_dim], got shape [2, 5, 2, 8]");

    [Test]
    public void SequenceMismatch() => SequenceMismatchFails("must agree on batch and sequence length");

    [Test]
    public void QueryNotDivisibleByQueryHeads() =>
        QueryNotDivisibleFails("query's last dimension 30 is not a positive multiple of q_num_heads=4");

    [Test]
    public void KeyHeadDimMismatch() =>
        KeyHeadDimMismatchFails("key's last dimension 18 must be kv_num_heads * head_dim = 2 * 8 = 16");

    [Test]
    public void ValueNotDivisibleByKvHeads() =>
        ValueNotDivisibleFails("value's last dimension 7 is not a positive multiple of kv_num_heads=2");

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
    public void ValueCacheWithWrongHeadDim()
    {
        using var s = new WindowAttentionSession(Good.Options);
        var c = Good;
        var past = c.Past with { Value = new float[c.Batch * c.KvHeads * c.Rows * c.Dk] };
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, past, pastValueShape: [c.Batch, c.KvHeads, c.Rows, c.Dk]),
            "past_value_cache has shape [2, 2, 5, 8]; expected [batch, kv_num_heads, sinks + window, v_head_dim] = [2, 2, 5, 6]");
        AssertStillWorks(s);
    }

    [Test]
    public void CacheOfWrongRank()
    {
        using var s = new WindowAttentionSession(Good.Options, declareShapes: false);
        var c = Good;
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, c.Past, pastKeyShape: [c.Batch * c.KvHeads, c.Rows, c.Dk]),
            "past_key_cache has shape [4, 5, 8]");
        AssertStillWorks(s);
    }

    [Test]
    public void PositionOfWrongShapeOrSign()
    {
        using var s = new WindowAttentionSession(Good.Options);
        var c = Good;
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, c.Past with { Position = [4, 4, 4] }),
            "past_position has shape [3]; expected [batch] (or [1]) = [2]");
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, c.Past with { Position = [-2, 5] }),
            "past_position[0] is -2; token counts cannot be negative");
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, c.Past with { Position = [long.MaxValue - 2, 5] }),
            "overflows int64");
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
        SessionCreationFailsWithout(WindowAttentionSession.BuildModel(Good.Options, pastInputs: 0), "window",
            "required attribute 'window' is missing");
}
