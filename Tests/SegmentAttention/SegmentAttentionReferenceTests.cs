using NUnit.Framework;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SegmentAttention;

/// <summary>The ORT-hosted kernel against the double-precision reference over awkward sizes and segment lengths.</summary>
[TestFixture]
public class SegmentAttentionReferenceTests
{
    private static readonly int[] Lengths = [1, 2, 63, 64, 65, 500];

    public static IEnumerable<SegmentAttentionCase> AwkwardSizes()
    {
        // 64-token segments make lengths 63, 64 and 65 stop just before, at and just after the first segment switch.
        foreach (var t in Lengths) yield return new SegmentAttentionCase(2, t, 4, 2, 64, 64, 64, Seed: t * 131 + 64);
        foreach (var d in new[] { 1, 60, 128 })
            foreach (var t in new[] { 1, 63, 65 })
                yield return new SegmentAttentionCase(2, t, 4, 2, d, d, 16, Seed: t * 131 + d);
        yield return new SegmentAttentionCase(2, 65, 4, 2, 8, 8, 1, Seed: 3);       // every token its own segment
        yield return new SegmentAttentionCase(2, 500, 4, 2, 1, 1, 16, Seed: 11);
        yield return new SegmentAttentionCase(1, 500, 4, 2, 128, 128, 64, Seed: 12);
        yield return new SegmentAttentionCase(1, 500, 2, 1, 60, 60, 600, Seed: 13); // one segment longer than the sequence
    }

    public static IEnumerable<SegmentAttentionCase> Variants()
    {
        yield return new SegmentAttentionCase(1, 9, 8, 1, 32, 8, 3);              // one KV head for all (multi-query)
        yield return new SegmentAttentionCase(2, 12, 3, 3, 7, 5, 4, Scale: 0.7f);  // no grouping, odd dims, explicit scale
        yield return new SegmentAttentionCase(2, 17, 6, 2, 60, 1, 2);              // GQA groups of 3, dv = 1
        yield return new SegmentAttentionCase(1, 30, 2, 2, 5, 9, 100);             // never leaves the first segment
        yield return new SegmentAttentionCase(1, 1, 2, 2, 1, 1, 1);                // the smallest decode
    }

    public static IEnumerable<SegmentAttentionCase> WithHistory()
    {
        yield return new SegmentAttentionCase(3, 9, 4, 2, 8, 6, 4, History: 3);                  // rows at 3, 4, 5: around the first switch
        yield return new SegmentAttentionCase(3, 20, 2, 1, 16, 8, 16, History: 14, HistoryStep: 9); // 14, 23, 32 (a boundary)
        yield return new SegmentAttentionCase(2, 1, 4, 4, 64, 64, 8, History: 70);
        yield return new SegmentAttentionCase(2, 7, 4, 2, 8, 8, 1, History: 5);
        yield return new SegmentAttentionCase(2, 40, 4, 2, 60, 60, 64, History: 63, HistoryStep: 2);  // 63 and 65
    }

    private static void AssertMatches(SegmentAttentionSession.Outputs got, SegmentAttentionReference.Result want, SegmentAttentionCase c)
    {
        TensorAssert.Close(got.Y, want.Output, Tolerance.Float32, $"{c}: output");
        var present = got.Present!;
        TensorAssert.Close(present.MemoryKey, want.MemoryKey, Tolerance.Float32, $"{c}: present_memory_key");
        TensorAssert.Close(present.MemoryValue, want.MemoryValue, Tolerance.Float32, $"{c}: present_memory_value");
        TensorAssert.Close(present.SegmentKey, want.SegmentKey, Tolerance.Float32, $"{c}: present_segment_key");
        TensorAssert.Close(present.SegmentValue, want.SegmentValue, Tolerance.Float32, $"{c}: present_segment_value");
        Assert.That(present.Position, Is.EqualTo(want.Position), $"{c}: present_position");
        Assert.That(got.YShape, Is.EqualTo(new long[] { c.Batch, c.Seq, c.QHeads * c.Dv }));
    }

    [TestCaseSource(nameof(AwkwardSizes))]
    [TestCaseSource(nameof(Variants))]
    public void MatchesReferenceFromZeroState(SegmentAttentionCase c)
    {
        using var session = new SegmentAttentionSession(c.Options, pastInputs: 0);
        AssertMatches(session.Run(c, c.Seq, c.Query, c.Key, c.Value, null), c.Reference(null), c);
    }

    [TestCaseSource(nameof(WithHistory))]
    public void MatchesReferenceFromGivenState(SegmentAttentionCase c)
    {
        var past = c.Past;
        using var session = new SegmentAttentionSession(c.Options);
        AssertMatches(session.Run(c, c.Seq, c.Query, c.Key, c.Value, past), c.Reference(past), c);
    }

    [Test]
    public void StateShapesDoNotDependOnSequenceLength()
    {
        foreach (var t in new[] { 1, 10, 300 })
        {
            var c = new SegmentAttentionCase(2, t, 4, 2, 8, 6, 16);
            using var session = new SegmentAttentionSession(c.Options, pastInputs: 0);
            var all = session.Run(c, c.Seq, c.Query, c.Key, c.Value, null).All;
            Assert.That(all["present_memory_key"].Shape, Is.EqualTo(new long[] { 2, 2, 16, 8 }), $"T={t}");
            Assert.That(all["present_memory_value"].Shape, Is.EqualTo(new long[] { 2, 2, 16, 6 }), $"T={t}");
            Assert.That(all["present_segment_key"].Shape, Is.EqualTo(new long[] { 2, 2, 16, 8 }), $"T={t}");
            Assert.That(all["present_segment_value"].Shape, Is.EqualTo(new long[] { 2, 2, 16, 6 }), $"T={t}");
            Assert.That(all["present_position"].Shape, Is.EqualTo(new long[] { 2 }), $"T={t}");
            Assert.That(all["present_position"].Longs, Is.EqualTo(new long[] { t, t }), $"T={t}");
        }
    }
}
