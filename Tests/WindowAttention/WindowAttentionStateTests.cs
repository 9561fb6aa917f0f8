using NUnit.Framework;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.WindowAttention;

/// <summary>Carrying the state: a prefill equals decode steps, and a split prefill equals one piece.</summary>
[TestFixture]
public class WindowAttentionStateTests
{
    public static IEnumerable<WindowAttentionCase> Cases()
    {
        // Prefills longer than the window: the ring wraps inside one call.
        yield return new WindowAttentionCase(2, 65, 4, 2, 64, 64, 16);
        yield return new WindowAttentionCase(2, 65, 4, 2, 60, 60, 16, Sinks: 4);
        yield return new WindowAttentionCase(1, 33, 8, 2, 1, 7, 1, Sinks: 1);
        yield return new WindowAttentionCase(2, 21, 4, 4, 8, 8, 5, Sinks: 6, Softcap: 0.5f, History: 3);
        yield return new WindowAttentionCase(3, 30, 2, 1, 16, 8, 40, Sinks: 2); // the window never fills
    }

    private static WindowState Start(WindowAttentionCase c) => c.History > 0 ? c.Past : c.ZeroState;

    [TestCaseSource(nameof(Cases))]
    public void PrefillEqualsTokenByTokenDecode(WindowAttentionCase c)
    {
        using var session = new WindowAttentionSession(c.Options);
        var whole = session.Run(c, c.Seq, c.Query, c.Key, c.Value, Start(c));

        var state = Start(c);
        var stepwise = new float[whole.Y.Length];
        int qw = c.QHeads * c.Dk, kw = c.KvHeads * c.Dk, vw = c.KvHeads * c.Dv, yw = c.QHeads * c.Dv;
        for (var t = 0; t < c.Seq; t++)
        {
            var step = session.Run(c, 1, SequenceSlices.Slice(c.Query, c.Batch, c.Seq, qw, t, 1),
                SequenceSlices.Slice(c.Key, c.Batch, c.Seq, kw, t, 1), SequenceSlices.Slice(c.Value, c.Batch, c.Seq, vw, t, 1), state);
            SequenceSlices.Place(step.Y, stepwise, c.Batch, c.Seq, yw, t, 1);
            AssertStateShapes(step, c);
            state = step.Present!;
        }
        TensorAssert.Close(stepwise, whole.Y, Tolerance.Float32Reordered, $"{c}: outputs");
        AssertSameState(state, whole.Present!, c);
    }

    [TestCaseSource(nameof(Cases))]
    public void SplitPrefillEqualsOnePiece(WindowAttentionCase c)
    {
        using var session = new WindowAttentionSession(c.Options);
        var whole = session.Run(c, c.Seq, c.Query, c.Key, c.Value, Start(c));
        int qw = c.QHeads * c.Dk, kw = c.KvHeads * c.Dk, vw = c.KvHeads * c.Dv, yw = c.QHeads * c.Dv;
        // Three uneven pieces, so ring wraps and the end of the sinks fall inside pieces and on their edges.
        int[] cuts = [0, c.Seq / 3 + 1, c.Seq / 3 + 1 + c.Seq / 4, c.Seq];
        var state = Start(c);
        var joined = new float[whole.Y.Length];
        for (var p = 0; p + 1 < cuts.Length; p++)
        {
            int start = cuts[p], count = cuts[p + 1] - cuts[p];
            var piece = session.Run(c, count, SequenceSlices.Slice(c.Query, c.Batch, c.Seq, qw, start, count),
                SequenceSlices.Slice(c.Key, c.Batch, c.Seq, kw, start, count),
                SequenceSlices.Slice(c.Value, c.Batch, c.Seq, vw, start, count), state);
            SequenceSlices.Place(piece.Y, joined, c.Batch, c.Seq, yw, start, count);
            AssertStateShapes(piece, c);
            state = piece.Present!;
        }
        TensorAssert.Close(joined, whole.Y, Tolerance.Float32Reordered, $"{c}: outputs");
        AssertSameState(state, whole.Present!, c);
    }

    private static void AssertStateShapes(WindowAttentionSession.Outputs got, WindowAttentionCase c)
    {
        Assert.That(got.All["present_key_cache"].Shape, Is.EqualTo(c.CacheKeyShape), $"{c}: key cache shape");
        Assert.That(got.All["present_value_cache"].Shape, Is.EqualTo(c.CacheValueShape), $"{c}: value cache shape");
        Assert.That(got.All["present_position"].Shape, Is.EqualTo(new long[] { c.Batch }), $"{c}: position shape");
    }

    private static void AssertSameState(WindowState got, WindowState want, WindowAttentionCase c)
    {
        Assert.That(got.Key, Is.EqualTo(want.Key), $"{c}: key cache (copied values, so exactly equal)");
        Assert.That(got.Value, Is.EqualTo(want.Value), $"{c}: value cache");
        Assert.That(got.Position, Is.EqualTo(want.Position), $"{c}: position");
    }
}
