using NUnit.Framework;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.HybridAttention;

/// <summary>
/// compress=hedgehog (window + linear memory on learned features, one shared normaliser): the kernel against the
/// double-precision reference, state carried between calls, and its inputs refused when they do not fit.
/// </summary>
[TestFixture]
public class HybridAttentionHedgehogTests
{
    private static HybridAttentionCase Case(int batch, int seq, int qHeads, int kvHeads, int dk, int dv, int window, int m,
        int seed = 1, int history = 0, float scale = 0f) =>
        new(batch, seq, qHeads, kvHeads, dk, dv, window, "hedgehog", Scale: scale, Seed: seed, History: history, Projections: m);

    public static IEnumerable<HybridAttentionCase> FromZero()
    {
        foreach (var t in new[] { 1, 4, 5, 40 }) yield return Case(2, t, 4, 2, 8, 6, 4, 3, seed: t);  // before, at and after the first eviction
        yield return Case(1, 30, 8, 1, 16, 8, 1, 2);             // the window is just the token; one KV head for all
        yield return Case(2, 12, 3, 3, 7, 5, 100, 1, scale: 0.7f); // nothing is ever evicted; explicit scale
        yield return Case(1, 70, 4, 2, 16, 16, 16, 8);
    }

    public static IEnumerable<HybridAttentionCase> WithHistory()
    {
        yield return Case(3, 9, 4, 2, 8, 6, 4, 2, history: 3); // rows at 3, 4, 5: before, at, past the first eviction
        yield return Case(2, 1, 4, 4, 16, 8, 8, 4, history: 70);
    }

    public static IEnumerable<HybridAttentionCase> Carried()
    {
        yield return Case(2, 33, 4, 2, 8, 8, 5, 3);
        yield return Case(2, 21, 4, 4, 8, 8, 5, 2, history: 3);
    }

    private static void AssertMatches(HybridAttentionSession.Outputs got, HybridAttentionReference.Result want, HybridAttentionCase c)
    {
        TensorAssert.Close(got.Y, want.Output, Tolerance.Float32, $"{c}: output");
        var present = got.Present!;
        TensorAssert.Close(present.Key, want.Key, Tolerance.Float32, $"{c}: present_key");
        Assert.That(present.Position, Is.EqualTo(want.Position), $"{c}: present_position");
        TensorAssert.Close(present.CompressedKey, want.CompressedKey, Tolerance.Float32, $"{c}: present_compressed_key");
        TensorAssert.Close(present.CompressedValue, want.CompressedValue, Tolerance.Float32, $"{c}: present_compressed_value");
    }

    [TestCaseSource(nameof(FromZero))]
    public void MatchesReferenceFromZeroState(HybridAttentionCase c)
    {
        using var session = new HybridAttentionSession(c.Options, pastInputs: 0, maps: c.Maps);
        AssertMatches(session.Run(c, c.Seq, c.Query, c.Key, c.Value, null), c.Reference(null), c);
    }

    [TestCaseSource(nameof(WithHistory))]
    public void MatchesReferenceFromGivenState(HybridAttentionCase c)
    {
        var past = c.Past;
        using var session = new HybridAttentionSession(c.Options, maps: c.Maps);
        AssertMatches(session.Run(c, c.Seq, c.Query, c.Key, c.Value, past), c.Reference(past), c);
    }

    [TestCaseSource(nameof(Carried))]
    public void PrefillEqualsTokenByTokenDecode(HybridAttentionCase c) => AssertPiecesEqualWhole(c, StatePieces.EveryToken(c.Seq));

    [TestCaseSource(nameof(Carried))]
    public void SplitPrefillEqualsOnePiece(HybridAttentionCase c) => AssertPiecesEqualWhole(c, [c.Seq / 3 + 1, c.Seq / 3 + 1 + c.Seq / 4]);

    private static void AssertPiecesEqualWhole(HybridAttentionCase c, int[] innerCuts)
    {
        using var session = new HybridAttentionSession(c.Options, maps: c.Maps);
        StatePieces.AssertPiecesEqualWhole(c, c.History > 0 ? c.Past : c.ZeroState, innerCuts, (n, q, k, v, past) => session.Run(c, n, q, k, v, past),
            (got, want) =>
            {
                Assert.That(got.Key, Is.EqualTo(want.Key), $"{c}: key cache");
                Assert.That(got.Position, Is.EqualTo(want.Position), $"{c}: position");
                TensorAssert.Close(got.CompressedKey, want.CompressedKey, Tolerance.Float32Reordered, $"{c}: compressed key");
                TensorAssert.Close(got.CompressedValue, want.CompressedValue, Tolerance.Float32Reordered, $"{c}: compressed value");
            });
    }

    [Test]
    public void StateHoldsTwoMFeaturesWhateverTheSequenceLength()
    {
        foreach (var t in new[] { 1, 50 })
        {
            var c = Case(2, t, 4, 2, 8, 6, 4, 3);
            using var session = new HybridAttentionSession(c.Options, pastInputs: 0, maps: c.Maps);
            var all = session.Run(c, c.Seq, c.Query, c.Key, c.Value, null).All;
            Assert.That(all["present_compressed_key"].Shape, Is.EqualTo(new long[] { 2, 2, 6 }), $"T={t}");
            Assert.That(all["present_compressed_value"].Shape, Is.EqualTo(new long[] { 2, 2, 6, 6 }), $"T={t}");
        }
    }

    private static readonly HybridAttentionCase Good = Case(2, 5, 4, 2, 8, 6, 3, 2);

    private static void AssertRunFails(HybridAttentionReference.HedgehogMaps? maps, string fragment, HybridAttentionCase? c = null, int? mapHeadDim = null)
    {
        c ??= Good;
        using var session = new HybridAttentionSession(c.Options, pastInputs: 0, maps: maps, mapHeadDim: mapHeadDim);
        OrtAssert.RunFails(() => session.Run(c, c.Seq, c.Query, c.Key, c.Value, null), fragment);
    }

    [Test]
    public void MissingMapsAreRefused() => AssertRunFails(null, "compress=hedgehog needs input feature_query_weight");

    [Test]
    public void MapsForAnotherCompressKindAreRefused() =>
        AssertRunFails(Good.Maps, "input feature_query_weight is for compress=hedgehog only; this node has compress=linear",
            Good with { Compress = "linear", Projections = 0 });

    [Test]
    public void WeightsForAnotherHeadSizeAreRefused()
    {
        var other = Good with { Dk = 9 };
        AssertRunFails(other.Maps, "feature_query_weight has shape [4, 9, 2]; expected [q_num_heads, head_dim, projections] = [4, 8, 2]", mapHeadDim: 9);
    }

    [Test]
    public void ANegativeMixIsRefused() =>
        AssertRunFails(Good.Maps! with { Mix = [1f, -0.5f, 1f, 1f] }, "mix[1] is -0.5; the mix must be finite and non-negative");

    [Test]
    public void ANonFiniteWeightIsRefused()
    {
        var weight = Good.Maps!.KeyWeight.ToArray();
        weight[3] = float.NaN;
        AssertRunFails(Good.Maps with { KeyWeight = weight }, "feature_key_weight[3] is NaN; feature map weights must be finite");
    }

    [Test]
    public void ProjectionsMustFitTheCompressKind()
    {
        OrtAssert.SessionCreationFails(HybridAttentionSession.BuildModel(Good.Options with { Projections = 0 }, pastInputs: 0),
            "projections must be in [1, 4096] for compress=hedgehog, got 0");
        OrtAssert.SessionCreationFails(HybridAttentionSession.BuildModel(Good.Options with { Compress = "mean" }, pastInputs: 0),
            "projections is for compress=hedgehog only; compress=mean takes 0, got 2");
    }
}
