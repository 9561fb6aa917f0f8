using NUnit.Framework;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.WindowAttention;

/// <summary>The ORT-hosted kernel against the double-precision reference over awkward sizes, windows and sinks.</summary>
[TestFixture]
public class WindowAttentionReferenceTests
{
    private static readonly int[] Lengths = [1, 2, 63, 64, 65, 500];

    public static IEnumerable<WindowAttentionCase> AwkwardSizes()
    {
        // A 64-token window makes lengths 63, 64 and 65 stop just before, at and just after the first wrap of the ring.
        foreach (var t in Lengths) yield return new WindowAttentionCase(2, t, 4, 2, 64, 64, 64, Seed: t * 131 + 64);
        foreach (var t in Lengths) yield return new WindowAttentionCase(2, t, 4, 2, 64, 64, 16, Sinks: 4, Seed: t * 131 + 16);
        foreach (var d in new[] { 1, 60, 128 })
            foreach (var t in new[] { 1, 63, 65 })
                yield return new WindowAttentionCase(2, t, 4, 2, d, d, 16, Sinks: d == 60 ? 3 : 0, Seed: t * 131 + d);
        yield return new WindowAttentionCase(2, 500, 4, 2, 1, 1, 1, Seed: 11);                 // the window is just the token
        yield return new WindowAttentionCase(1, 500, 4, 2, 128, 128, 16, Sinks: 1, Seed: 12);
        yield return new WindowAttentionCase(1, 500, 2, 1, 60, 60, 700, Seed: 13);             // window longer than the sequence
    }

    public static IEnumerable<WindowAttentionCase> Variants()
    {
        yield return new WindowAttentionCase(1, 9, 8, 1, 32, 8, 3);                            // one KV head for all (multi-query)
        yield return new WindowAttentionCase(2, 12, 3, 3, 7, 5, 4, Scale: 0.7f);               // no grouping, odd dims, explicit scale
        yield return new WindowAttentionCase(2, 17, 6, 2, 60, 1, 1, Sinks: 2);                 // window 1 plus sinks
        yield return new WindowAttentionCase(1, 30, 2, 2, 5, 9, 100, Sinks: 3);                // sinks never leave the window
        yield return new WindowAttentionCase(2, 40, 4, 2, 6, 6, 4, Sinks: 20);                 // more sinks than window
        yield return new WindowAttentionCase(1, 10, 2, 1, 4, 4, 2, Sinks: 50);                 // more sinks than tokens
        yield return new WindowAttentionCase(2, 50, 4, 2, 16, 16, 8, Sinks: 2, Scale: 3f, Softcap: 2.5f); // a softcap that bites
        yield return new WindowAttentionCase(1, 1, 2, 2, 1, 1, 1);                             // the smallest decode
    }

    public static IEnumerable<WindowAttentionCase> WithHistory()
    {
        yield return new WindowAttentionCase(3, 9, 4, 2, 8, 6, 4, History: 3);                 // rows at 3, 4, 5: before, at, past the first wrap
        yield return new WindowAttentionCase(3, 9, 4, 2, 8, 6, 4, Sinks: 4, History: 3);       // sinks partly written by the past
        yield return new WindowAttentionCase(2, 20, 2, 1, 16, 8, 6, Sinks: 2, History: 13);
        yield return new WindowAttentionCase(2, 1, 4, 4, 64, 64, 8, Sinks: 1, Softcap: 1f, History: 70);
        yield return new WindowAttentionCase(2, 70, 4, 2, 16, 16, 64, History: 60);           // a prefill longer than the window, from a full ring
    }

    private static void AssertMatches(WindowAttentionSession.Outputs got, WindowAttentionReference.Result want, WindowAttentionCase c)
    {
        Assert.That(got.YShape, Is.EqualTo(new long[] { c.Batch, c.Seq, c.QHeads * c.Dv }));
        TensorAssert.Close(got.Y, want.Output, Tolerance.Float32, $"{c}: output");
        var present = got.Present!;
        TensorAssert.Close(present.Key, want.KeyCache, Tolerance.Float32, $"{c}: present_key_cache");
        TensorAssert.Close(present.Value, want.ValueCache, Tolerance.Float32, $"{c}: present_value_cache");
        Assert.That(present.Position, Is.EqualTo(want.Position), $"{c}: present_position");
    }

    [TestCaseSource(nameof(AwkwardSizes))]
    [TestCaseSource(nameof(Variants))]
    public void MatchesReferenceFromZeroState(WindowAttentionCase c)
    {
        using var session = new WindowAttentionSession(c.Options, pastInputs: 0);
        AssertMatches(session.Run(c, c.Seq, c.Query, c.Key, c.Value, null), c.Reference(null), c);
    }

    [TestCaseSource(nameof(WithHistory))]
    public void MatchesReferenceFromGivenState(WindowAttentionCase c)
    {
        var past = c.Past;
        using var session = new WindowAttentionSession(c.Options);
        AssertMatches(session.Run(c, c.Seq, c.Query, c.Key, c.Value, past), c.Reference(past), c);
    }

    [Test]
    public void LargePositionsWrapTheRingByModulo()
    {
        // Arbitrary cache contents at positions far beyond int range: row r of the ring is position p with p mod W = r.
        var c = new WindowAttentionCase(2, 7, 4, 2, 8, 6, 5, Sinks: 3);
        var past = new WindowState(Seeded.Uniform(901, c.Batch * c.KvHeads * c.Rows * c.Dk),
            Seeded.Uniform(902, c.Batch * c.KvHeads * c.Rows * c.Dv), [5_000_000_003L, 12_345_678_901L]);
        using var session = new WindowAttentionSession(c.Options);
        AssertMatches(session.Run(c, c.Seq, c.Query, c.Key, c.Value, past), c.Reference(past), c);
    }

    [Test]
    public void OnePositionSharedByEveryRow()
    {
        // past_position as [1]: every batch row continues from it, and present_position keeps the [1] shape.
        var c = new WindowAttentionCase(3, 6, 4, 2, 8, 6, 4, Sinks: 2);
        var past = new WindowState(Seeded.Uniform(903, c.Batch * c.KvHeads * c.Rows * c.Dk),
            Seeded.Uniform(904, c.Batch * c.KvHeads * c.Rows * c.Dv), [9]);
        using var session = new WindowAttentionSession(c.Options);
        var got = session.Run(c, c.Seq, c.Query, c.Key, c.Value, past);
        AssertMatches(got, c.Reference(past), c);
        Assert.That(got.All["present_position"].Shape, Is.EqualTo(new long[] { 1 }));
        Assert.That(got.Present!.Position, Is.EqualTo(new long[] { 15 }));
    }

    [Test]
    public void StateShapesDoNotDependOnSequenceLength()
    {
        foreach (var sinks in new[] { 0, 3 })
            foreach (var t in new[] { 1, 10, 300 })
            {
                var c = new WindowAttentionCase(2, t, 4, 2, 8, 6, 16, Sinks: sinks);
                using var session = new WindowAttentionSession(c.Options, pastInputs: 0);
                var all = session.Run(c, c.Seq, c.Query, c.Key, c.Value, null).All;
                Assert.That(all["present_key_cache"].Shape, Is.EqualTo(new long[] { 2, 2, 16 + sinks, 8 }), $"S={sinks} T={t}");
                Assert.That(all["present_value_cache"].Shape, Is.EqualTo(new long[] { 2, 2, 16 + sinks, 6 }), $"S={sinks} T={t}");
                Assert.That(all["present_position"].Shape, Is.EqualTo(new long[] { 2 }), $"S={sinks} T={t}");
            }
    }
}
