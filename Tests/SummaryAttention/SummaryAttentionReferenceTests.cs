using NUnit.Framework;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SummaryAttention;

/// <summary>The ORT-hosted kernel against the double-precision reference over awkward sizes and every summary kind.</summary>
[TestFixture]
public class SummaryAttentionReferenceTests
{
    private static readonly int[] Lengths = [1, 2, 63, 64, 65, 500];
    private static readonly int[] HeadDims = [1, 60, 64, 128];

    private static SummaryAttentionCase OfKind(string kind, int t, int d, int seed) => kind switch
    {
        // A 64-token window makes lengths 63, 64 and 65 stop just before, at and just after the first lap.
        "moving" => new SummaryAttentionCase(2, t, 4, 2, d, d, "moving", Window: 64, Seed: seed),
        "ema" => new SummaryAttentionCase(2, t, 4, 2, d, d, "ema", Alpha: 0.9f, NumSlots: 2, Seed: seed),
        _ => new SummaryAttentionCase(2, t, 4, 2, d, d, "cumulative", Seed: seed),
    };

    public static IEnumerable<SummaryAttentionCase> AwkwardSizes()
    {
        foreach (var kind in new[] { "cumulative", "moving", "ema" })
        {
            // Every length at one head dim, every head dim at the lengths around 64, and the long one at the extremes.
            foreach (var t in Lengths) yield return OfKind(kind, t, 64, t * 131 + 64);
            foreach (var d in new[] { 1, 60, 128 })
                foreach (var t in new[] { 1, 63, 65 })
                    yield return OfKind(kind, t, d, t * 131 + d);
            yield return OfKind(kind, 500, 1, 500 * 131 + 1);
            yield return OfKind(kind, 500, 128, 500 * 131 + 128);
        }
    }

    public static IEnumerable<SummaryAttentionCase> Variants()
    {
        yield return new SummaryAttentionCase(1, 9, 8, 1, 32, 8, "cumulative");             // one KV head for all (multi-query)
        yield return new SummaryAttentionCase(2, 5, 3, 3, 7, 5, "cumulative", Scale: 0.7f); // no grouping, odd dims, explicit scale
        yield return new SummaryAttentionCase(2, 17, 6, 2, 60, 1, "moving", Window: 1);      // the window is just the token
        yield return new SummaryAttentionCase(3, 40, 4, 1, 16, 24, "moving", Window: 7);     // several laps, uneven
        yield return new SummaryAttentionCase(1, 30, 2, 2, 5, 9, "moving", Window: 100);     // never fills
        yield return new SummaryAttentionCase(2, 33, 4, 2, 16, 16, "ema", Alpha: 0f);       // no memory at all
        yield return new SummaryAttentionCase(2, 50, 4, 2, 16, 16, "ema", Alpha: 0.99f, NumSlots: 4);
        yield return new SummaryAttentionCase(1, 20, 2, 1, 3, 4, "ema", Alpha: 0.5f, NumSlots: 16, Scale: 2f);
        yield return new SummaryAttentionCase(1, 1, 2, 2, 1, 1, "ema");                    // the smallest decode
    }

    public static IEnumerable<SummaryAttentionCase> WithHistory()
    {
        yield return new SummaryAttentionCase(2, 12, 4, 2, 8, 6, "cumulative", History: 5);
        yield return new SummaryAttentionCase(3, 9, 4, 2, 8, 6, "moving", Window: 4, History: 2);  // rows at 2, 3, 4: before, at, past a lap
        yield return new SummaryAttentionCase(2, 20, 2, 1, 16, 8, "moving", Window: 6, History: 13);
        yield return new SummaryAttentionCase(2, 15, 4, 2, 8, 6, "ema", Alpha: 0.8f, NumSlots: 3, History: 7);
        yield return new SummaryAttentionCase(2, 1, 4, 4, 64, 64, "ema", Alpha: 0.95f, History: 70);
    }

    private static void AssertMatches(SummaryAttentionSession.Outputs got, Reference.SummaryAttentionReference.Result want,
        SummaryAttentionCase c)
    {
        TensorAssert.Close(got.Y, want.Output, Tolerance.Float32, $"{c}: output");
        var present = got.Present!;
        TensorAssert.Close(present.KeySummary, want.KeySummary, Tolerance.Float32, $"{c}: present_key_summary");
        TensorAssert.Close(present.ValueSummary, want.ValueSummary, Tolerance.Float32, $"{c}: present_value_summary");
        Assert.That(present.Count, Is.EqualTo(want.Count), $"{c}: present_count");
        TensorAssert.Close(present.KeyWindow, want.KeyWindow, Tolerance.Float32, $"{c}: present_key_window");
        TensorAssert.Close(present.ValueWindow, want.ValueWindow, Tolerance.Float32, $"{c}: present_value_window");
        Assert.That(got.YShape, Is.EqualTo(new long[] { c.Batch, c.Seq, c.QHeads * c.Dv }));
    }

    [TestCaseSource(nameof(AwkwardSizes))]
    [TestCaseSource(nameof(Variants))]
    public void MatchesReferenceFromZeroState(SummaryAttentionCase c)
    {
        using var session = new SummaryAttentionSession(c.Options, pastInputs: 0);
        AssertMatches(session.Run(c, c.Seq, c.Query, c.Key, c.Value, null), c.Reference(null), c);
    }

    [TestCaseSource(nameof(WithHistory))]
    public void MatchesReferenceFromGivenState(SummaryAttentionCase c)
    {
        var past = c.Past;
        using var session = new SummaryAttentionSession(c.Options, c.PastInputs);
        AssertMatches(session.Run(c, c.Seq, c.Query, c.Key, c.Value, past), c.Reference(past), c);
    }

    [Test]
    public void StateShapesDoNotDependOnSequenceLength()
    {
        foreach (var kind in new[] { "cumulative", "moving", "ema" })
            foreach (var t in new[] { 1, 10, 300 })
            {
                var c = new SummaryAttentionCase(2, t, 4, 2, 8, 6, kind, Window: kind == "moving" ? 5 : 0, NumSlots: kind == "ema" ? 3 : 1);
                using var session = new SummaryAttentionSession(c.Options, pastInputs: 0);
                var all = session.Run(c, c.Seq, c.Query, c.Key, c.Value, null).All;
                var rows = kind == "moving" ? 5 : 0;
                var slots = kind == "ema" ? 3 : 1;
                Assert.That(all["present_key_summary"].Shape, Is.EqualTo(new long[] { 2, 2, slots, 8 }), $"{kind} T={t}");
                Assert.That(all["present_value_summary"].Shape, Is.EqualTo(new long[] { 2, 2, slots, 6 }), $"{kind} T={t}");
                Assert.That(all["present_count"].Shape, Is.EqualTo(new long[] { 2 }), $"{kind} T={t}");
                Assert.That(all["present_key_window"].Shape, Is.EqualTo(new long[] { 2, 2, rows, 8 }), $"{kind} T={t}");
                Assert.That(all["present_value_window"].Shape, Is.EqualTo(new long[] { 2, 2, rows, 6 }), $"{kind} T={t}");
            }
    }
}
