using NUnit.Framework;
using OnnxAttention.Tests.HybridAttention;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Reliability;

/// <summary>
/// Property test for HybridAttention over seeded cases (shapes, window, compress mode, epsilon, scale, float16, bfloat16, a
/// past state of earlier tokens): the kernel equals the reference, a split run and token-by-token decode equal the
/// whole run. A failure names its seed and the drawn case, so it can be replayed alone.
/// </summary>
[TestFixture]
public class HybridAttentionRandomizedTests
{
    private static readonly string[] Modes = ["linear", "mean"];

    public static IEnumerable<int> Seeds() => Enumerable.Range(4000, 36);

    private static (HybridAttentionCase Case, DrawnPlan Plan) Draw(int seed)
    {
        var r = Draws.For(seed);
        var s = DrawnShape.Draw(r);
        // A window longer than everything seen (nothing evicted: exact causal softmax) for one seed in four.
        var window = r.Next(4) == 0 ? r.Next(s.Seq, 300) : r.Next(1, 40);
        var compress = Modes[r.Next(Modes.Length)];
        // epsilon 0 is allowed: phi = elu + 1 > 0 keeps the linear part's normaliser positive once a token is evicted.
        var epsilon = r.Next(3) switch { 0 => 0f, 1 => (float)Math.Round(0.1 * r.NextDouble(), 4), _ => 1e-6f };
        var c = new HybridAttentionCase(s.Batch, s.Seq, s.QHeads, s.KvHeads, s.Dk, s.Dv, window, compress, s.Scale, epsilon,
            Seed: seed, History: r.Next(0, 120));
        return (c, DrawnPlan.Draw(r, s.Seq));
    }

    [TestCaseSource(nameof(Seeds))]
    public void KernelEqualsReferenceAndSplitAndDecodeEqualWhole(int seed)
    {
        var (c, plan) = Draw(seed);
        var label = $"seed {seed} ({c} eps{c.Epsilon}, {plan})";
        var start = c.Past;
        float[] q = c.Query, k = c.Key, v = c.Value;
        (q, k, v) = plan.Rounded(q, k, v);
        using var session = new HybridAttentionSession(c.Options,
            intraOpThreads: plan.Threads, activation: plan.Activation);

        var got = session.Run(c, c.Seq, q, k, v, start);
        var want = HybridAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv, q, k, v,
            start.Key, start.Value, start.Position, start.CompressedKey, start.CompressedValue);
        var present = HybridAttentionAssert.MatchesReference(got, want, plan.Output, label);

        var properties = new SequenceProperties<HybridState>(c.Batch, c.Seq, (q, c.QHeads * c.Dk), (k, c.KvHeads * c.Dk),
            (v, c.KvHeads * c.Dv), c.QHeads * c.Dv,
            (n, qs, ks, vs, state) => { var o = session.Run(c, n, qs, ks, vs, state); return (o.Y, o.Present!); },
            SameState, plan.Reordered);
        var whole = (got.Y, present);
        properties.SplitEqualsWhole(start, whole, plan.Cut, label);
        properties.DecodeEqualsWhole(start, whole, plan.DecodeTokens, label);
    }

    private static void SameState(HybridState got, HybridState want, string what)
    {
        // The ring holds copies; the compressed sums may be accumulated in another order when the sequence is cut.
        Assert.That(got.Key, Is.EqualTo(want.Key), $"{what}: key ring");
        Assert.That(got.Value, Is.EqualTo(want.Value), $"{what}: value ring");
        Assert.That(got.Position, Is.EqualTo(want.Position), $"{what}: position");
        TensorAssert.Close(got.CompressedKey, want.CompressedKey, Tolerance.Float32Reordered, $"{what}: compressed key");
        TensorAssert.Close(got.CompressedValue, want.CompressedValue, Tolerance.Float32Reordered, $"{what}: compressed value");
    }
}
