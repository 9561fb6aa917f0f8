using NUnit.Framework;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.SummaryAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Reliability;

/// <summary>
/// Property test for SummaryAttention over seeded cases (shapes, summary kind, moving window, EMA alpha and slots,
/// scale, float16, bfloat16, a past state of earlier tokens): the kernel equals the reference, a split run and
/// token-by-token decode equal the whole run. A failure names its seed and the drawn case, so it can be replayed alone.
/// </summary>
[TestFixture]
public class SummaryAttentionRandomizedTests
{
    private static readonly string[] Kinds = ["cumulative", "moving", "ema"];

    public static IEnumerable<int> Seeds() => Enumerable.Range(3000, 36);

    private static (SummaryAttentionCase Case, DrawnPlan Plan) Draw(int seed)
    {
        var r = Draws.For(seed);
        var s = DrawnShape.Draw(r);
        var kind = Kinds[r.Next(Kinds.Length)];
        // A moving window longer than everything seen for one seed in four, else one that laps inside the call.
        var window = kind != "moving" ? 0 : r.Next(4) == 0 ? r.Next(s.Seq, 300) : r.Next(1, 40);
        // alpha is checked for every kind; 0 (every slot is the current token) and values near 1 for EMA.
        var alpha = r.Next(5) switch { 0 => 0f, 1 => (float)Math.Round(0.99 + 0.0099 * r.NextDouble(), 4), _ => (float)Math.Round(r.NextDouble() * 0.99, 3) };
        var slots = kind == "ema" ? r.Next(1, 17) : 1;
        var c = new SummaryAttentionCase(s.Batch, s.Seq, s.QHeads, s.KvHeads, s.Dk, s.Dv, kind, window, alpha, slots, s.Scale,
            Seed: seed, History: r.Next(0, 120));
        return (c, DrawnPlan.Draw(r, s.Seq));
    }

    [TestCaseSource(nameof(Seeds))]
    public void KernelEqualsReferenceAndSplitAndDecodeEqualWhole(int seed)
    {
        var (c, plan) = Draw(seed);
        var label = $"seed {seed} ({c}, {plan})";
        var start = c.Past;
        float[] q = c.Query, k = c.Key, v = c.Value;
        (q, k, v) = plan.Rounded(q, k, v);
        using var session = new SummaryAttentionSession(c.Options, c.PastInputs,
            intraOpThreads: plan.Threads, activation: plan.Activation);

        var got = session.Run(c, c.Seq, q, k, v, start);
        var want = SummaryAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv, q, k, v,
            start.KeySummary, start.ValueSummary, start.Count, start.KeyWindow, start.ValueWindow);
        TensorAssert.Close(got.Y, want.Output, plan.Output, $"{label}: output");
        var present = got.Present!;
        TensorAssert.Close(present.KeySummary, want.KeySummary, Tolerance.Float32, $"{label}: present_key_summary");
        TensorAssert.Close(present.ValueSummary, want.ValueSummary, Tolerance.Float32, $"{label}: present_value_summary");
        Assert.That(present.Count, Is.EqualTo(want.Count), $"{label}: present_count");
        TensorAssert.Close(present.KeyWindow, want.KeyWindow, Tolerance.Float32, $"{label}: present_key_window");
        TensorAssert.Close(present.ValueWindow, want.ValueWindow, Tolerance.Float32, $"{label}: present_value_window");

        var properties = new SequenceProperties<SummaryState>(c.Batch, c.Seq, (q, c.QHeads * c.Dk), (k, c.KvHeads * c.Dk),
            (v, c.KvHeads * c.Dv), c.QHeads * c.Dv,
            (n, qs, ks, vs, state) => { var o = session.Run(c, n, qs, ks, vs, state); return (o.Y, o.Present!); },
            SameState, plan.Reordered);
        var whole = (got.Y, present);
        properties.SplitEqualsWhole(start, whole, plan.Cut, label);
        properties.DecodeEqualsWhole(start, whole, plan.DecodeTokens, label);
    }

    private static void SameState(SummaryState got, SummaryState want, string what)
    {
        // Sums and EMAs may be accumulated in another order when the sequence is cut; the rings hold copies.
        TensorAssert.Close(got.KeySummary, want.KeySummary, Tolerance.Float32Reordered, $"{what}: key summary");
        TensorAssert.Close(got.ValueSummary, want.ValueSummary, Tolerance.Float32Reordered, $"{what}: value summary");
        Assert.That(got.Count, Is.EqualTo(want.Count), $"{what}: count");
        Assert.That(got.KeyWindow, Is.EqualTo(want.KeyWindow), $"{what}: key window");
        Assert.That(got.ValueWindow, Is.EqualTo(want.ValueWindow), $"{what}: value window");
    }
}
