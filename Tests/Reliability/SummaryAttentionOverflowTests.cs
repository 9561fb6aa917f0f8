using NUnit.Framework;
using OnnxAttention.Tests.SummaryAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Reliability;

/// <summary>
/// SummaryAttention at and past its limits: state sizes past 32-bit index arithmetic (declared by empty sequences,
/// so nothing is allocated), a moving window past 2^24 or more than 16 EMA slots, counts at the end of int64. Each
/// gives an ORT error naming the problem (at session creation for attributes), never a truncated index or a wrong
/// result; and the documented limit itself works.
/// </summary>
[TestFixture]
public class SummaryAttentionOverflowTests
{
    private const int Limit = 1 << 24;

    [Test]
    public void AHeadDimensionPastInt32IsRefusedNotTruncated()
    {
        const long huge = 1L << 33;
        var c = new SummaryAttentionCase(1, 3, 2, 2, 4, 3, "moving", Window: 2);
        using var session = new SummaryAttentionSession(c.Options, pastInputs: 0);
        OrtAssert.RunFails(() => session.Run(c, 0, [], [], [], null, queryShape: [1, 0, 2 * huge], keyShape: [1, 0, 2 * huge]),
            $"head_dim would hold {huge} elements");
        TensorAssert.Close(session.Run(c, c.Seq, c.Query, c.Key, c.Value, null).Y, c.Reference(null).Output, Tolerance.Float32,
            "a good call after the refused one");
    }

    // Each tensor alone is small (the sequence is empty); the state the node would keep has 2^31 elements.
    [TestCase(1, "moving", Limit, 1, 128, 1, "the window state", TestName = "moving window 2^24 x head_dim 128")]
    [TestCase(1, "moving", Limit, 1, 1, 128, "the window state", TestName = "moving window 2^24 x v_head_dim 128")]
    [TestCase(65536, "ema", 0, 16, 2048, 1, "the summary state", TestName = "kv heads 2^16 x 16 EMA slots x head_dim 2^11")]
    public void AStateOfMoreThanInt32ElementsIsRefused(int heads, string summary, int window, int slots, int dk, int dv, string state)
    {
        var c = new SummaryAttentionCase(1, 0, heads, heads, dk, dv, summary, window, NumSlots: slots);
        using var session = new SummaryAttentionSession(c.Options, pastInputs: 0);
        OrtAssert.RunFails(() => session.Run(c, 0, [], [], [], null), $"{state} would hold 2147483648 elements");
    }

    [TestCase("moving", "window", Limit + 1L, "window must be in [1, 16777216]")]
    [TestCase("moving", "window", (1L << 32) + 1, "window must be in [1, 16777216]")] // read as an int: a window of 1
    [TestCase("ema", "num_slots", 17L, "num_slots must be in [1, 16], got 17")]
    [TestCase("ema", "num_slots", (1L << 32) + 2, "num_slots must be in [1, 16]")]   // read as an int: 2 slots
    public void AttributesPastTheirLimitAreRefusedAtSessionCreation(string summary, string name, long value, string message)
    {
        var options = new SummaryAttentionCase(1, 1, 2, 2, 4, 4, summary, summary == "moving" ? 4 : 0).Options;
        var model = NodeAttributes.WithInt(SummaryAttentionSession.BuildModel(options, 0), name, value);
        OrtAssert.SessionCreationFails(model, message);
    }

    [TestCase("cumulative", 0)]
    [TestCase("moving", 2)]
    [TestCase("ema", 0)]
    public void ACountWhoseEndOverflowsInt64IsRefused(string summary, int window)
    {
        var c = new SummaryAttentionCase(2, 3, 2, 1, 4, 3, summary, window, History: 4);
        using var session = new SummaryAttentionSession(c.Options, c.PastInputs);
        foreach (var fromTheEnd in new long[] { 0, 1 })
        {
            var past = c.ZeroState with { Count = [5, long.MaxValue - fromTheEnd] };
            OrtAssert.RunFails(() => session.Run(c, c.Seq, c.Query, c.Key, c.Value, past), $"past_count[1] is {long.MaxValue - fromTheEnd}; adding the sequence length {c.Seq} overflows int64");
        }
        // The last counts that fit: the present count 2^63 - 1.
        var given = c.Past;
        var atTheEnd = given with { Count = [given.Count[0], long.MaxValue - c.Seq] };
        var got = session.Run(c, c.Seq, c.Query, c.Key, c.Value, atTheEnd);
        TensorAssert.Close(got.Y, c.Reference(atTheEnd).Output, Tolerance.Float32, "a good call after the refused ones");
        Assert.That(got.Present!.Count, Is.EqualTo(new[] { given.Count[0] + c.Seq, long.MaxValue }));
    }

    [Test]
    public void TheLargestMovingWindowWorks()
    {
        // Five tokens from the start: a moving window of at least five holds all of them, a cumulative summary.
        var c = new SummaryAttentionCase(1, 5, 2, 1, 3, 2, "moving", Window: Limit);
        using var session = new SummaryAttentionSession(c.Options, pastInputs: 0, presentOutputs: 0);
        var cumulative = c with { Summary = "cumulative", Window = 0 };
        TensorAssert.Close(session.Run(c, c.Seq, c.Query, c.Key, c.Value, null).Y, cumulative.Reference(null).Output, Tolerance.Float32,
            "moving window 2^24");
    }
}
