using NUnit.Framework;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.LinearAttention;

/// <summary>The ORT-hosted kernel against the double-precision reference over awkward sizes.</summary>
[TestFixture]
public class LinearAttentionReferenceTests
{
    private static readonly int[] Lengths = [1, 2, 63, 64, 65, 500];
    private static readonly int[] HeadDims = [1, 60, 64, 128];

    public static IEnumerable<LinearAttentionCase> AwkwardSizes()
    {
        foreach (var t in Lengths)
            foreach (var d in HeadDims)
            {
                yield return new LinearAttentionCase(Batch: 2, Seq: t, QHeads: 4, KvHeads: 2, Dk: d, Dv: d, Seed: t * 131 + d);
            }
    }

    public static IEnumerable<LinearAttentionCase> Variants()
    {
        foreach (var map in new[] { "elu_plus_one", "relu", "identity" })
            foreach (var normalize in new[] { true, false })
            {
                yield return new LinearAttentionCase(3, 37, 6, 3, 16, 24, map, normalize, Scale: 0.5f);
            }
        yield return new LinearAttentionCase(1, 9, 8, 1, 32, 8);      // one KV head for all (multi-query)
        yield return new LinearAttentionCase(2, 5, 3, 3, 7, 5);       // no grouping, odd dims
        yield return new LinearAttentionCase(1, 1, 2, 2, 1, 1);       // the smallest decode
        yield return new LinearAttentionCase(2, 17, 4, 4, 60, 1, Scale: 0.125f); // value head dim 1
    }

    [TestCaseSource(nameof(AwkwardSizes))]
    [TestCaseSource(nameof(Variants))]
    public void MatchesReferenceFromZeroState(LinearAttentionCase c)
    {
        using var session = new LinearAttentionSession(c.Options, withPast: false);
        var got = session.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value);
        var want = c.Reference(withPast: false);
        TensorAssert.Close(got.Y, want.Output, Tolerance.Float32, $"{c}: output");
        TensorAssert.Close(got.State, want.State, Tolerance.Float32, $"{c}: present_state");
        TensorAssert.Close(got.Normalizer, want.Normalizer, Tolerance.Float32, $"{c}: present_normalizer");
        Assert.That(got.YShape, Is.EqualTo(new long[] { c.Batch, c.Seq, c.QHeads * c.Dv }));
    }

    [TestCaseSource(nameof(Variants))]
    public void MatchesReferenceFromGivenState(LinearAttentionCase c)
    {
        using var session = new LinearAttentionSession(c.Options, withPast: true);
        var got = session.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, c.PastState, c.PastNormalizer, c.StateShape, c.NormalizerShape);
        var want = c.Reference(withPast: true);
        TensorAssert.Close(got.Y, want.Output, Tolerance.Float32, $"{c}: output");
        TensorAssert.Close(got.State, want.State, Tolerance.Float32, $"{c}: present_state");
        TensorAssert.Close(got.Normalizer, want.Normalizer, Tolerance.Float32, $"{c}: present_normalizer");
    }

    [Test]
    public void StateShapesDoNotDependOnSequenceLength()
    {
        foreach (var t in new[] { 1, 10, 300 })
        {
            var c = new LinearAttentionCase(2, t, 4, 2, 8, 6);
            using var session = new LinearAttentionSession(c.Options, withPast: false);
            var got = session.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value);
            Assert.That(got.StateShape, Is.EqualTo(new long[] { 2, 2, 8, 6 }), $"T={t}");
            Assert.That(got.NormalizerShape, Is.EqualTo(new long[] { 2, 2, 8 }), $"T={t}");
        }
    }
}
