using NUnit.Framework;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.HybridAttention;

/// <summary>The ORT-hosted kernel against the double-precision reference over awkward sizes and both compress kinds.</summary>
[TestFixture]
public class HybridAttentionReferenceTests
{
    private static readonly int[] Lengths = [1, 2, 63, 64, 65, 500];

    public static IEnumerable<HybridAttentionCase> AwkwardSizes()
    {
        foreach (var kind in new[] { "linear", "mean" })
        {
            // A 64-token window makes lengths 63, 64 and 65 stop just before, at and just after the first eviction.
            foreach (var t in Lengths) yield return new HybridAttentionCase(2, t, 4, 2, 64, 64, 64, kind, Seed: t * 131 + 64);
            foreach (var d in new[] { 1, 60, 128 })
                foreach (var t in new[] { 1, 63, 65 })
                    yield return new HybridAttentionCase(2, t, 4, 2, d, d, 16, kind, Seed: t * 131 + d);
            yield return new HybridAttentionCase(2, 500, 4, 2, 1, 1, 32, kind, Seed: 11);
            yield return new HybridAttentionCase(1, 500, 4, 2, 128, 128, 32, kind, Seed: 12);
        }
    }

    public static IEnumerable<HybridAttentionCase> Variants()
    {
        foreach (var kind in new[] { "linear", "mean" })
        {
            yield return new HybridAttentionCase(1, 9, 8, 1, 32, 8, 3, kind);               // one KV head for all (multi-query)
            yield return new HybridAttentionCase(2, 12, 3, 3, 7, 5, 4, kind, Scale: 0.7f);  // no grouping, odd dims, explicit scale
            yield return new HybridAttentionCase(2, 17, 6, 2, 60, 1, 1, kind);              // the window is just the token
            yield return new HybridAttentionCase(1, 30, 2, 2, 5, 9, 100, kind);             // nothing is ever evicted
            yield return new HybridAttentionCase(1, 1, 2, 2, 1, 1, 1, kind);                // the smallest decode
        }
        yield return new HybridAttentionCase(2, 40, 4, 2, 16, 16, 5, "linear", Epsilon: 0.5f); // epsilon that matters
    }

    public static IEnumerable<HybridAttentionCase> WithHistory()
    {
        foreach (var kind in new[] { "linear", "mean" })
        {
            yield return new HybridAttentionCase(3, 9, 4, 2, 8, 6, 4, kind, History: 3);    // rows at 3, 4, 5: before, at, past the first eviction
            yield return new HybridAttentionCase(2, 20, 2, 1, 16, 8, 6, kind, History: 13);
            yield return new HybridAttentionCase(2, 1, 4, 4, 64, 64, 8, kind, History: 70);
        }
    }

    private static void AssertMatches(HybridAttentionSession.Outputs got, HybridAttentionReference.Result want, HybridAttentionCase c)
    {
        HybridAttentionAssert.MatchesReference(got, want, Tolerance.Float32, c.ToString());
        Assert.That(got.YShape, Is.EqualTo(new long[] { c.Batch, c.Seq, c.QHeads * c.Dv }));
    }

    [TestCaseSource(nameof(AwkwardSizes))]
    [TestCaseSource(nameof(Variants))]
    public void MatchesReferenceFromZeroState(HybridAttentionCase c)
    {
        using var session = new HybridAttentionSession(c.Options, pastInputs: 0);
        AssertMatches(session.Run(c, c.Seq, c.Query, c.Key, c.Value, null), c.Reference(null), c);
    }

    [TestCaseSource(nameof(WithHistory))]
    public void MatchesReferenceFromGivenState(HybridAttentionCase c)
    {
        var past = c.Past;
        using var session = new HybridAttentionSession(c.Options);
        AssertMatches(session.Run(c, c.Seq, c.Query, c.Key, c.Value, past), c.Reference(past), c);
    }

    [Test]
    public void StateShapesDoNotDependOnSequenceLength()
    {
        foreach (var kind in new[] { "linear", "mean" })
            foreach (var t in new[] { 1, 10, 300 })
            {
                var c = new HybridAttentionCase(2, t, 4, 2, 8, 6, 16, kind);
                using var session = new HybridAttentionSession(c.Options, pastInputs: 0);
                var all = session.Run(c, c.Seq, c.Query, c.Key, c.Value, null).All;
                Assert.That(all["present_key"].Shape, Is.EqualTo(new long[] { 2, 2, 16, 8 }), $"{kind} T={t}");
                Assert.That(all["present_value"].Shape, Is.EqualTo(new long[] { 2, 2, 16, 6 }), $"{kind} T={t}");
                Assert.That(all["present_position"].Shape, Is.EqualTo(new long[] { 2 }), $"{kind} T={t}");
                Assert.That(all["present_compressed_key"].Shape, Is.EqualTo(new long[] { 2, 2, 8 }), $"{kind} T={t}");
                Assert.That(all["present_compressed_value"].Shape, Is.EqualTo(new long[] { 2, 2, kind == "linear" ? 8 : 1, 6 }), $"{kind} T={t}");
            }
    }
}
