using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SummaryAttention;

/// <summary>Bad models and inputs give an ORT error naming the problem; the process and the session survive.</summary>
[TestFixture]
public class SummaryAttentionBadInputTests
{
    private static readonly SummaryAttentionCase Good = new(2, 5, 4, 2, 8, 6, "moving", Window: 3, History: 4);

    private static void AssertStillWorks(SummaryAttentionSession session)
    {
        var c = Good;
        var past = c.Past;
        var got = session.Run(c, c.Seq, c.Query, c.Key, c.Value, past);
        TensorAssert.Close(got.Y, c.Reference(past).Output, Tolerance.Float32, "run after a failure");
    }

    private static void AssertSessionCreationFails(SummaryAttentionNode.Options options, string expectedFragment) =>
        OrtAssert.SessionCreationFails(SummaryAttentionSession.BuildModel(options, pastInputs: 0), expectedFragment);

    [Test]
    public void SummaryOfWrongShape()
    {
        using var s = new SummaryAttentionSession(Good.Options, 5);
        var c = Good;
        var past = c.Past with { KeySummary = new float[c.Batch * c.KvHeads * 2 * c.Dk] };
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, past, keySummaryShape: [c.Batch, c.KvHeads, 2, c.Dk]),
            "past_key_summary has shape [2, 2, 2, 8]; expected [batch, kv_num_heads, num_slots, head_dim] = [2, 2, 1, 8]");
        AssertStillWorks(s);
    }

    [Test]
    public void WindowOfWrongShape()
    {
        using var s = new SummaryAttentionSession(Good.Options, 5);
        var c = Good;
        var past = c.Past with { KeyWindow = new float[c.Batch * c.KvHeads * 4 * c.Dk] };
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, past, keyWindowShape: [c.Batch, c.KvHeads, 4, c.Dk]),
            "past_key_window has shape [2, 2, 4, 8]; expected [batch, kv_num_heads, window, head_dim] = [2, 2, 3, 8]");
        AssertStillWorks(s);
    }

    [Test]
    public void NonEmptyWindowForAKindWithoutOne()
    {
        var c = new SummaryAttentionCase(2, 5, 4, 2, 8, 6, "cumulative", History: 2);
        using var s = new SummaryAttentionSession(c.Options, 5);
        var past = c.Past with { KeyWindow = new float[c.Batch * c.KvHeads * 3 * c.Dk] };
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, past, keyWindowShape: [c.Batch, c.KvHeads, 3, c.Dk]),
            "expected [batch, kv_num_heads, 0, head_dim] (summary=cumulative keeps no window)");
        var ok = s.Run(c, c.Seq, c.Query, c.Key, c.Value, c.Past);
        TensorAssert.Close(ok.Y, c.Reference(c.Past).Output, Tolerance.Float32, "run after a failure");
    }

    [Test]
    public void PartialState()
    {
        // A moving summary without its ring buffers would average over zeros: refused.
        using var s = new SummaryAttentionSession(Good.Options, 3);
        var c = Good;
        OrtAssert.RunFails(() => s.Run(c, c.Seq, c.Query, c.Key, c.Value, c.Past),
            "got past_key_summary, past_value_summary, past_count but not past_key_window, past_value_window");
        using var full = new SummaryAttentionSession(Good.Options, 5);
        AssertStillWorks(full);
    }

    [TestCase("softmax", "unknown summary 'softmax'; expected one of: cumulative, moving, ema")]
    [TestCase("", "unknown summary ''")]
    public void UnknownSummaryKind(string kind, string message) =>
        AssertSessionCreationFails(Good.Options with { Summary = kind }, message);

    [TestCase(1f, "alpha must be in [0, 1), got 1")]
    [TestCase(-0.1f, "alpha must be in [0, 1), got -0.1")]
    [TestCase(float.NaN, "alpha must be in [0, 1), got NaN")]
    public void AlphaOutsideUnitInterval(float alpha, string message) =>
        AssertSessionCreationFails(new SummaryAttentionNode.Options(4, 2, "ema", Alpha: alpha), message);

    [TestCase(0, "window must be in [1, 16777216] for summary=moving, got 0")]
    [TestCase(-3, "window must be in [1, 16777216] for summary=moving, got -3")]
    public void MovingWindowNotPositive(int window, string message) =>
        AssertSessionCreationFails(new SummaryAttentionNode.Options(4, 2, "moving", Window: window), message);

    [Test]
    public void WindowWithAKindThatHasNone() =>
        AssertSessionCreationFails(new SummaryAttentionNode.Options(4, 2, "ema", Window: 8),
            "window is used only by summary=moving; got window=8 with summary=ema");

    [TestCase("cumulative", 2, "num_slots > 1 needs summary=ema (multi-scale EMA); got num_slots=2 with summary=cumulative")]
    [TestCase("ema", 0, "num_slots must be in [1, 16], got 0")]
    [TestCase("ema", 17, "num_slots must be in [1, 16], got 17")]
    public void BadSlotCounts(string kind, int slots, string message) =>
        AssertSessionCreationFails(new SummaryAttentionNode.Options(4, 2, kind, NumSlots: slots), message);

    [TestCase(4, 3, "kv_num_heads must be positive and divide q_num_heads (4), got 3")]
    [TestCase(0, 0, "q_num_heads must be in [1, 65536], got 0")]
    [TestCase(2, 4, "kv_num_heads must be positive and divide q_num_heads (2), got 4")]
    [TestCase(2, -1, "kv_num_heads must be positive and divide q_num_heads (2), got -1")]
    public void BadHeadCounts(int q, int kv, string message) =>
        AssertSessionCreationFails(new SummaryAttentionNode.Options(q, kv), message);

    [Test]
    public void NonFiniteScale() =>
        AssertSessionCreationFails(new SummaryAttentionNode.Options(4, 2, Scale: float.PositiveInfinity), "scale must be finite");
}
