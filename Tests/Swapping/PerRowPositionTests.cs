using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Tests.Support;
using static OnnxAttention.Tests.Swapping.ContribAttentionModels;

namespace OnnxAttention.Tests.Swapping;

/// <summary>
/// past_sequence_length given per row ([batch]) on a swapped GroupQueryAttention with rotary embedding: the rotation
/// the swap writes before the replacement, and the replacement's own position, must follow each row.
/// </summary>
[TestFixture]
public class PerRowPositionTests
{
    private const int Seq = 11;

    [TestCase("linear-elu")]
    [TestCase("window:4")]
    [TestCase("segment:3")]
    public void ADecodeStepWithRowsAtDifferentPositionsGivesEachRowsOwnOutput(string rule)
    {
        var c = new Gqa(HeadDim: 16) { Rotary = true };
        var pair = Swap(GroupQueryAttention(c), rule);
        var single = Swap(GroupQueryAttention(c with { Batch = 1 }), rule);
        var state = ModelContract.Read(pair).State;
        int[] widths = [c.QWidth, c.KvWidth, c.KvWidth];
        string[] names = ["q", "k", "v"];
        var data = widths.Select((w, i) => Seeded.Uniform(31 + i, 2 * Seq * w, -2, 2)).ToArray();
        var whole = PieceRunner.Swapped(pair, names.Select((n, i) => new PieceRunner.SequenceInput(n, data[i], widths[i])).ToList(), 2, Seq, [Seq], "y");

        // Each row alone through its first prefix[r] tokens (batch 1), then both rows one token on, at positions 3 and 7.
        int[] prefix = [3, 7];
        var rowStates = new List<float[]>[2];
        using (var runner = new TypedModelRunner(single))
        {
            for (var r = 0; r < 2; r++)
            {
                var feed = names.Select((n, i) => KeyValuePair.Create(n, TypedTensor.Of(RowTokens(data[i], widths[i], r, 0, prefix[r]), 1, prefix[r], widths[i]))).ToList();
                feed.Add(KeyValuePair.Create(PositionOffset.InputName, TypedTensor.Of(new long[] { 0 })));
                feed.AddRange(state.Select(s => KeyValuePair.Create(s.Past, TypedTensor.Of(new float[s.ElementsPerRow], [1, .. s.TailShape]))));
                var result = runner.Run(feed, [.. state.Select(s => s.Present)]);
                rowStates[r] = state.Select(s => result[s.Present].Floats).ToList();
            }
        }
        using (var runner = new TypedModelRunner(pair))
        {
            var feed = names.Select((n, i) => KeyValuePair.Create(n, TypedTensor.Of(
                SequenceSlices.ConcatRows([RowTokens(data[i], widths[i], 0, prefix[0], 1), RowTokens(data[i], widths[i], 1, prefix[1], 1)]), 2, 1, widths[i]))).ToList();
            feed.Add(KeyValuePair.Create(PositionOffset.InputName, TypedTensor.Of(prefix.Select(p => (long)p).ToArray(), 2)));
            feed.AddRange(state.Select((s, k) => KeyValuePair.Create(s.Past, TypedTensor.Of(SequenceSlices.ConcatRows([rowStates[0][k], rowStates[1][k]]), [2, .. s.TailShape]))));
            var y = runner.Run(feed, "y")["y"].Floats;
            var width = c.QWidth;
            for (var r = 0; r < 2; r++)
            {
                TensorAssert.Close(y.AsSpan(r * width, width), whole.AsSpan((r * Seq + prefix[r]) * width, width), Tolerance.Float32Reordered,
                    $"{rule}: row {r} at position {prefix[r]}, stepped together vs the whole sequence");
            }
        }
    }

    private static ModelProto Swap(ModelProto model, string rule)
    {
        var report = AttentionSwapper.Swap(model, AttentionRule.Parse(rule));
        Assert.That(report.PositionsPerRow, Is.True, "rotary positions are written per row");
        return model;
    }

    /// <summary>Tokens start .. start + count - 1 of row r of a [2, Seq, width] tensor.</summary>
    private static float[] RowTokens(float[] x, int width, int r, int start, int count) =>
        x.AsSpan((r * Seq + start) * width, count * width).ToArray();
}
