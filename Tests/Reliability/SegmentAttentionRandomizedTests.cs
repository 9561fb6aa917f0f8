using NUnit.Framework;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.SegmentAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Reliability;

/// <summary>
/// Property test for SegmentAttention over seeded cases (shapes, segment length, scale, float16, bfloat16, batch rows in
/// different segments, a past state of earlier tokens whose unused rows may hold garbage): the kernel equals the
/// reference, a split run and token-by-token decode equal the whole run. A failure names its seed and the drawn
/// case, so it can be replayed alone.
/// </summary>
[TestFixture]
public class SegmentAttentionRandomizedTests
{
    public static IEnumerable<int> Seeds() => Enumerable.Range(5000, 36);

    /// <param name="Garbage">The state rows that hold no token (documented as ignored on input) are filled with noise.</param>
    private sealed record Drawn(SegmentAttentionCase Case, DrawnPlan Plan, bool Garbage)
    {
        public override string ToString() => $"{Case}, {Plan}" + (Garbage ? ", garbage in unused rows" : "");
    }

    private static Drawn Draw(int seed)
    {
        var r = Draws.For(seed);
        var s = DrawnShape.Draw(r);
        // A segment longer than everything seen (full causal attention) for one seed in four.
        var length = r.Next(4) == 0 ? r.Next(s.Seq, 300) : r.Next(1, 40);
        var c = new SegmentAttentionCase(s.Batch, s.Seq, s.QHeads, s.KvHeads, s.Dk, s.Dv, length, s.Scale, Seed: seed,
            History: r.Next(0, 120), HistoryStep: r.Next(0, 2 * length + 1));
        return new Drawn(c, DrawnPlan.Draw(r, s.Seq), r.Next(3) == 0);
    }

    private static SegmentState Start(Drawn d, int seed)
    {
        var c = d.Case;
        var past = c.Past;
        if (!d.Garbage) return past;
        var noise = new Random(seed * 31 + 5);
        int l = c.SegmentLength;
        for (var b = 0; b < c.Batch; b++)
        {
            long seen = c.HistoryOf(b), offset = seen % l;
            var memoryUnused = seen < l;
            for (var h = 0; h < c.KvHeads; h++)
                for (var row = 0; row < l; row++)
                {
                    var at = ((long)b * c.KvHeads + h) * l + row;
                    if (memoryUnused) Fill(past.MemoryKey, past.MemoryValue, at);
                    if (row >= offset) Fill(past.SegmentKey, past.SegmentValue, at);
                }
        }
        return past;

        void Fill(float[] key, float[] value, long row)
        {
            for (var i = 0; i < c.Dk; i++) key[row * c.Dk + i] = (float)(noise.NextDouble() * 200 - 100);
            for (var i = 0; i < c.Dv; i++) value[row * c.Dv + i] = (float)(noise.NextDouble() * 200 - 100);
        }
    }

    [TestCaseSource(nameof(Seeds))]
    public void KernelEqualsReferenceAndSplitAndDecodeEqualWhole(int seed)
    {
        var d = Draw(seed);
        var (c, plan) = (d.Case, d.Plan);
        var label = $"seed {seed} ({d})";
        var start = Start(d, seed);
        float[] q = c.Query, k = c.Key, v = c.Value;
        (q, k, v) = plan.Rounded(q, k, v);
        using var session = new SegmentAttentionSession(c.Options,
            intraOpThreads: plan.Threads, activation: plan.Activation);

        var got = session.Run(c, c.Seq, q, k, v, start);
        var want = SegmentAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv, q, k, v,
            start.MemoryKey, start.MemoryValue, start.SegmentKey, start.SegmentValue, start.Position);
        TensorAssert.Close(got.Y, want.Output, plan.Output, $"{label}: output");
        var present = got.Present!;
        TensorAssert.Close(present.MemoryKey, want.MemoryKey, Tolerance.Float32, $"{label}: present_memory_key");
        TensorAssert.Close(present.MemoryValue, want.MemoryValue, Tolerance.Float32, $"{label}: present_memory_value");
        TensorAssert.Close(present.SegmentKey, want.SegmentKey, Tolerance.Float32, $"{label}: present_segment_key");
        TensorAssert.Close(present.SegmentValue, want.SegmentValue, Tolerance.Float32, $"{label}: present_segment_value");
        Assert.That(present.Position, Is.EqualTo(want.Position), $"{label}: present_position");

        var properties = new SequenceProperties<SegmentState>(c.Batch, c.Seq, (q, c.QHeads * c.Dk), (k, c.KvHeads * c.Dk),
            (v, c.KvHeads * c.Dv), c.QHeads * c.Dv,
            (n, qs, ks, vs, state) => { var o = session.Run(c, n, qs, ks, vs, state); return (o.Y, o.Present!); },
            SameState, plan.Reordered);
        var whole = (got.Y, present);
        properties.SplitEqualsWhole(start, whole, plan.Cut, label);
        properties.DecodeEqualsWhole(start, whole, plan.DecodeTokens, label);
    }

    // Both buffers hold copies of keys and values, and unused rows come out as zeros: the same bits however the sequence was cut.
    private static void SameState(SegmentState got, SegmentState want, string what)
    {
        Assert.That(got.MemoryKey, Is.EqualTo(want.MemoryKey), $"{what}: memory key");
        Assert.That(got.MemoryValue, Is.EqualTo(want.MemoryValue), $"{what}: memory value");
        Assert.That(got.SegmentKey, Is.EqualTo(want.SegmentKey), $"{what}: segment key");
        Assert.That(got.SegmentValue, Is.EqualTo(want.SegmentValue), $"{what}: segment value");
        Assert.That(got.Position, Is.EqualTo(want.Position), $"{what}: position");
    }
}
