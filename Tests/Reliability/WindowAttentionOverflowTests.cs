using NUnit.Framework;
using OnnxAttention.Tests.Support;
using OnnxAttention.Tests.WindowAttention;

namespace OnnxAttention.Tests.Reliability;

/// <summary>
/// WindowAttention at and past its limits: sizes past 32-bit index arithmetic (declared by empty sequences, so
/// nothing is allocated), attributes past their documented range of [1, 2^24], positions at the end of int64. Each
/// gives an ORT error naming the problem (at session creation for attributes), never a truncated index or a wrong
/// result; and the documented limit itself works.
/// </summary>
[TestFixture]
public class WindowAttentionOverflowTests
{
    private const int Limit = 1 << 24;

    [Test]
    public void AHeadDimensionPastInt32IsRefusedNotTruncated()
    {
        const long huge = 1L << 33;
        var c = new WindowAttentionCase(1, 3, 2, 2, 4, 3, Window: 2, Sinks: 1);
        using var session = new WindowAttentionSession(c.Options, pastInputs: 0);
        OrtAssert.RunFails(() => session.Run(c, 0, [], [], [], null, queryShape: [1, 0, 2 * huge], keyShape: [1, 0, 2 * huge], valueShape: [1, 0, 2]),
            $"head_dim would hold {huge} elements");
        StillWorks(session, c);
    }

    // Each tensor alone is small (the sequence is empty); the cache the node would keep has 2^31 elements.
    [TestCase(1, 1, Limit, 0, 128, 1, TestName = "window 2^24 x head_dim 128")]
    [TestCase(1, 1, Limit, 0, 1, 128, TestName = "window 2^24 x v_head_dim 128")]
    [TestCase(1, 1, Limit, Limit, 64, 64, TestName = "(sinks + window) 2^25 x head_dim 64")]
    [TestCase(2, 1024, 1024, 0, 1024, 1, TestName = "batch 2 x kv heads 1024 x window 1024 x head_dim 1024")]
    public void ACacheOfMoreThanInt32ElementsIsRefused(int batch, int heads, int window, int sinks, int dk, int dv)
    {
        var c = new WindowAttentionCase(batch, 0, heads, heads, dk, dv, window, sinks);
        using var session = new WindowAttentionSession(c.Options, pastInputs: 0);
        OrtAssert.RunFails(() => session.Run(c, 0, [], [], [], null), "the KV cache would hold 2147483648 elements");
    }

    [TestCase("window", Limit + 1L)]
    [TestCase("window", (1L << 32) + 1)] // read as an int, this would be a window of 1
    [TestCase("sinks", Limit + 1L)]
    [TestCase("sinks", 1L << 32)]        // read as an int, this would be no sinks
    public void AttributesPastTheirLimitAreRefusedAtSessionCreation(string name, long value)
    {
        var model = NodeAttributes.WithInt(WindowAttentionSession.BuildModel(new(2, Window: 4)), name, value);
        OrtAssert.SessionCreationFails(model, $"{name} must be in [{(name == "window" ? 1 : 0)}, {Limit}], got {value}");
    }

    [TestCase(0L)]
    [TestCase(1L)]
    public void APositionWhoseEndOverflowsInt64IsRefused(long fromTheEnd)
    {
        var c = new WindowAttentionCase(2, 3, 2, 1, 4, 3, Window: 2, Sinks: 1);
        using var session = new WindowAttentionSession(c.Options);
        var past = c.ZeroState with { Position = [5, long.MaxValue - fromTheEnd] };
        OrtAssert.RunFails(() => session.Run(c, c.Seq, c.Query, c.Key, c.Value, past), $"past_position {long.MaxValue - fromTheEnd} + sequence {c.Seq} overflows int64");
        var atTheEnd = c.ZeroState with { Position = [5, long.MaxValue - c.Seq] };
        var got = session.Run(c, c.Seq, c.Query, c.Key, c.Value, atTheEnd);
        TensorAssert.Close(got.Y, c.Reference(atTheEnd).Output, Tolerance.Float32, "the last representable positions");
        Assert.That(got.Present!.Position, Is.EqualTo(new[] { 5 + c.Seq, long.MaxValue }));
    }

    [Test]
    public void TheLargestWindowWorks()
    {
        // Five tokens from the start: any window of at least five is causal attention over them, sinks add nothing.
        var c = new WindowAttentionCase(1, 5, 2, 1, 3, 2, Window: Limit, Sinks: 2);
        using var session = new WindowAttentionSession(c.Options, pastInputs: 0, presentOutputs: 0);
        var small = c with { Window = c.Seq };
        TensorAssert.Close(session.Run(c, c.Seq, c.Query, c.Key, c.Value, null).Y, small.Reference(null).Output, Tolerance.Float32, "window 2^24");
    }

    private static void StillWorks(WindowAttentionSession session, WindowAttentionCase c) =>
        TensorAssert.Close(session.Run(c, c.Seq, c.Query, c.Key, c.Value, null).Y, c.Reference(null).Output, Tolerance.Float32,
            $"{c}: a good call after the refused one");
}
