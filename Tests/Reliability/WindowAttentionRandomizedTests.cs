using NUnit.Framework;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;
using OnnxAttention.Tests.WindowAttention;

namespace OnnxAttention.Tests.Reliability;

/// <summary>
/// Property test for WindowAttention over seeded cases (shapes, window, sinks, softcap, scale, float16, bfloat16, past
/// state): the kernel equals the reference, a split run and token-by-token decode equal the whole run. A failure
/// names its seed and the drawn case, so it can be replayed alone.
/// </summary>
[TestFixture]
public class WindowAttentionRandomizedTests
{
    public static IEnumerable<int> Seeds() => Enumerable.Range(2000, 36);

    /// <param name="RandomState">
    /// The past state is arbitrary cache contents at random positions (far past int32 for some rows, or one
    /// position shared as [1]) instead of the state of earlier tokens: any cache is a valid state for this op.
    /// </param>
    private sealed record Drawn(WindowAttentionCase Case, DrawnPlan Plan, bool RandomState, bool SharedPosition)
    {
        public override string ToString() => $"{Case}, {Plan}" + (RandomState ? SharedPosition ? ", random state, shared position" : ", random state" : "");
    }

    private static Drawn Draw(int seed)
    {
        var r = Draws.For(seed);
        var s = DrawnShape.Draw(r);
        // A window longer than everything seen (plain causal attention) for one seed in four, else one that wraps.
        var window = r.Next(4) == 0 ? r.Next(s.Seq, 300) : r.Next(1, 40);
        if (r.Next(6) == 0)
        {
            // A prefill long enough, with a window wide enough, for the kernel's blocked path (at least 128
            // queries, the last seeing at least 256 keys).
            s = s with { Seq = r.Next(256, 300) };
            window = r.Next(256, 400);
        }
        var sinks = r.Next(3) == 0 ? 0 : r.Next(0, 12);
        var softcap = r.Next(3) == 0 ? (float)Math.Round(0.2 + 3 * r.NextDouble(), 3) : 0f;
        var c = new WindowAttentionCase(s.Batch, s.Seq, s.QHeads, s.KvHeads, s.Dk, s.Dv, window, sinks, s.Scale, softcap,
            Seed: seed, History: r.Next(0, 120));
        var randomState = r.Next(4) == 0;
        var shared = randomState && r.Next(2) == 0;
        return new Drawn(c, DrawnPlan.Draw(r, s.Seq), randomState, shared);
    }

    private static WindowState Start(Drawn d, int seed)
    {
        var c = d.Case;
        if (!d.RandomState) return c.Past;
        var r = new Random(seed * 31 + 7);
        long Position() => r.Next(2) == 0 ? r.Next(0, 3 * c.Rows) : r.NextInt64(1L << 31, 1L << 40);
        var positions = d.SharedPosition ? [Position()] : Enumerable.Range(0, c.Batch).Select(_ => Position()).ToArray();
        var state = new WindowState(Seeded.Uniform(seed + 11, c.Batch * c.KvHeads * c.Rows * c.Dk),
            Seeded.Uniform(seed + 12, c.Batch * c.KvHeads * c.Rows * c.Dv), positions);
        for (var b = 0; b < c.Batch; b++)
        {
            var seen = positions[d.SharedPosition ? 0 : b];
            // A sink position still inside the window has two copies (sink row and ring row) that the operator
            // always writes together: anything else is no state it could have produced.
            for (var j = 0; j < c.Sinks && j < seen; j++)
            {
                if (seen - j > c.Window) continue;
                for (var h = 0; h < c.KvHeads; h++)
                {
                    var head = (long)b * c.KvHeads + h;
                    var ring = c.Sinks + j % c.Window;
                    Array.Copy(state.Key, (head * c.Rows + j) * c.Dk, state.Key, (head * c.Rows + ring) * c.Dk, c.Dk);
                    Array.Copy(state.Value, (head * c.Rows + j) * c.Dv, state.Value, (head * c.Rows + ring) * c.Dv, c.Dv);
                }
            }
        }
        return state;
    }

    [TestCaseSource(nameof(Seeds))]
    public void KernelEqualsReferenceAndSplitAndDecodeEqualWhole(int seed)
    {
        var d = Draw(seed);
        var c = d.Case;
        var label = $"seed {seed} ({d})";
        var start = Start(d, seed);
        float[] q = c.Query, k = c.Key, v = c.Value;
        (q, k, v) = d.Plan.Rounded(q, k, v);
        using var session = new WindowAttentionSession(c.Options,
            intraOpThreads: d.Plan.Threads, activation: d.Plan.Activation);

        var got = session.Run(c, c.Seq, q, k, v, start);
        var want = WindowAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv, q, k, v, start.Key, start.Value, start.Position);
        var outputTolerance = d.Plan.Output;
        TensorAssert.Close(got.Y, want.Output, outputTolerance, $"{label}: output");
        TensorAssert.Close(got.Present!.Key, want.KeyCache, Tolerance.Float32, $"{label}: present_key_cache");
        TensorAssert.Close(got.Present.Value, want.ValueCache, Tolerance.Float32, $"{label}: present_value_cache");
        Assert.That(got.Present.Position, Is.EqualTo(want.Position), $"{label}: present_position");

        var properties = new SequenceProperties<WindowState>(c.Batch, c.Seq, (q, c.QHeads * c.Dk), (k, c.KvHeads * c.Dk),
            (v, c.KvHeads * c.Dv), c.QHeads * c.Dv,
            (n, qs, ks, vs, state) => { var o = session.Run(c, n, qs, ks, vs, state); return (o.Y, o.Present!); },
            SameState, d.Plan.Reordered);
        var whole = (got.Y, got.Present);
        properties.SplitEqualsWhole(start, whole, d.Plan.Cut, label);
        properties.DecodeEqualsWhole(start, whole, d.Plan.DecodeTokens, label);
    }

    // The caches hold copies of keys and values, so however the sequence was cut they are bit for bit the same.
    private static void SameState(WindowState got, WindowState want, string what)
    {
        Assert.That(got.Key, Is.EqualTo(want.Key), $"{what}: key cache");
        Assert.That(got.Value, Is.EqualTo(want.Value), $"{what}: value cache");
        Assert.That(got.Position, Is.EqualTo(want.Position), $"{what}: position");
    }
}
