using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SegmentAttention;

/// <summary>Hand-worked values of the documented rule, plain causal attention inside one segment, ignored rows, partial graphs, threads, float16.</summary>
[TestFixture]
public class SegmentAttentionEdgeTests
{
    private static float[] RunOneHead(int segmentLength, float[] q, float[] k, float[] v)
    {
        var c = new SegmentAttentionCase(1, q.Length, 1, 1, 1, 1, segmentLength, Scale: 1f);
        using var session = new SegmentAttentionSession(c.Options, pastInputs: 0);
        return session.Run(c, q.Length, q, k, v, null).Y;
    }

    // q = 1 and k_j = ln w_j make token j's softmax weight proportional to w_j = 1 .. 5.
    private static readonly float[] Ones = [1f, 1f, 1f, 1f, 1f];
    private static readonly float[] LogWeights = [0f, MathF.Log(2), MathF.Log(3), MathF.Log(4), MathF.Log(5)];
    private static readonly float[] Values = [10f, 20f, 30f, 40f, 50f];

    [Test]
    public void SegmentsOfTwoByHand()
    {
        // Segments {0,1}, {2,3}, {4,..}. Token 3 sees 0..3 (previous segment and its own); token 4 sees 2, 3, 4 only.
        var y = RunOneHead(2, Ones, LogWeights, Values);
        TensorAssert.Close(y, [10.0, 50.0 / 3, 140.0 / 6, 300.0 / 10, 500.0 / 12], Tolerance.Float32, "y");
    }

    [Test]
    public void SegmentsOfOneByHand()
    {
        // Every token is a segment: token p sees p - 1 and p.
        var y = RunOneHead(1, Ones, LogWeights, Values);
        TensorAssert.Close(y, [10.0, 50.0 / 3, 130.0 / 5, 250.0 / 7, 410.0 / 9], Tolerance.Float32, "y");
    }

    /// <summary>Full causal softmax attention over a whole [batch, seq, ...] stream, written out directly.</summary>
    private static double[] CausalAttention(SegmentAttentionCase c, float[] q, float[] k, float[] v, int seq)
    {
        var scale = c.Scale != 0 ? c.Scale : 1.0 / Math.Sqrt(c.Dk);
        var group = c.QHeads / c.KvHeads;
        var y = new double[c.Batch * seq * c.QHeads * c.Dv];
        for (var b = 0; b < c.Batch; b++)
            for (var h = 0; h < c.QHeads; h++)
                for (var i = 0; i < seq; i++)
                {
                    var kvh = h / group;
                    var scores = new double[i + 1];
                    for (var j = 0; j <= i; j++)
                        for (var d = 0; d < c.Dk; d++)
                            scores[j] += scale * q[((b * seq + i) * c.QHeads + h) * c.Dk + d] * k[((b * seq + j) * c.KvHeads + kvh) * c.Dk + d];
                    var max = scores.Max();
                    var weights = scores.Select(s => Math.Exp(s - max)).ToArray();
                    var total = weights.Sum();
                    for (var j = 0; j <= i; j++)
                        for (var d = 0; d < c.Dv; d++)
                            y[((b * seq + i) * c.QHeads + h) * c.Dv + d] += weights[j] / total * v[((b * seq + j) * c.KvHeads + kvh) * c.Dv + d];
                }
        return y;
    }

    [TestCase(60)]
    [TestCase(97)]
    [TestCase(4096)]
    public void OneSegmentCoveringEverythingIsCausalSoftmaxAttention(int segmentLength)
    {
        var c = new SegmentAttentionCase(2, 60, 4, 2, 8, 5, segmentLength, Scale: 0.4f);
        using var session = new SegmentAttentionSession(c.Options, pastInputs: 0);
        var y = session.Run(c, c.Seq, c.Query, c.Key, c.Value, null).Y;
        TensorAssert.Close(y, CausalAttention(c, c.Query, c.Key, c.Value, c.Seq), Tolerance.Float32, "causal softmax");
    }

    [Test]
    public void OneSegmentCoveringEverythingIsCausalSoftmaxAcrossCalls()
    {
        // 64 tokens in pieces of 20, 1 and 43, the last ending exactly where the segment fills.
        var c = new SegmentAttentionCase(2, 64, 4, 2, 16, 8, 64);
        var want = CausalAttention(c, c.Query, c.Key, c.Value, c.Seq);
        using var session = new SegmentAttentionSession(c.Options);
        int qw = c.QHeads * c.Dk, kw = c.KvHeads * c.Dk, vw = c.KvHeads * c.Dv, yw = c.QHeads * c.Dv;
        var state = c.ZeroState;
        var joined = new float[want.Length];
        foreach (var (start, count) in new[] { (0, 20), (20, 1), (21, 43) })
        {
            var piece = session.Run(c, count, SequenceSlices.Slice(c.Query, c.Batch, c.Seq, qw, start, count),
                SequenceSlices.Slice(c.Key, c.Batch, c.Seq, kw, start, count),
                SequenceSlices.Slice(c.Value, c.Batch, c.Seq, vw, start, count), state);
            SequenceSlices.Place(piece.Y, joined, c.Batch, c.Seq, yw, start, count);
            state = piece.Present!;
        }
        TensorAssert.Close(joined, want, Tolerance.Float32, "causal softmax, three calls");
        // The full segment has become the memory: it holds the 64 keys in order, and the new segment is empty.
        Assert.That(state.MemoryKey.Take(c.Dk), Is.EqualTo(c.Key.Take(c.Dk)), "memory row 0 of head 0 is token 0's key");
        Assert.That(state.SegmentKey, Is.All.EqualTo(0f), "segment buffer cleared after the switch");
        Assert.That(state.Position, Is.EqualTo(new long[] { 64, 64 }));
    }

    [Test]
    public void EmptySequencePassesTheStateThrough()
    {
        var c = new SegmentAttentionCase(2, 0, 4, 2, 8, 6, 3, History: 5);
        var past = c.Past;
        using var session = new SegmentAttentionSession(c.Options);
        var got = session.Run(c, 0, [], [], [], past);
        Assert.That(got.YShape, Is.EqualTo(new long[] { 2, 0, 24 }));
        Assert.That(got.Present!.MemoryKey, Is.EqualTo(past.MemoryKey));
        Assert.That(got.Present.MemoryValue, Is.EqualTo(past.MemoryValue));
        Assert.That(got.Present.SegmentKey, Is.EqualTo(past.SegmentKey));
        Assert.That(got.Present.SegmentValue, Is.EqualTo(past.SegmentValue));
        Assert.That(got.Present.Position, Is.EqualTo(past.Position));
    }

    [Test]
    public void RowsHoldingNoTokenAreIgnoredAndComeBackZero()
    {
        // Row 0 at 3 (segment 0: no memory, segment rows 3.. unused), row 1 at 9 (segment 1: segment rows 1.. unused).
        var c = new SegmentAttentionCase(2, 6, 4, 2, 8, 6, 8, History: 3, HistoryStep: 6);
        var clean = c.Past;
        var dirty = clean with
        {
            MemoryKey = Fill(clean.MemoryKey, 0, c.KvHeads * c.SegmentLength * c.Dk, 7f),
            MemoryValue = Fill(clean.MemoryValue, 0, c.KvHeads * c.SegmentLength * c.Dv, -7f),
            SegmentKey = Dirty(clean.SegmentKey, c.Dk),
            SegmentValue = Dirty(clean.SegmentValue, c.Dv),
        };
        float[] Dirty(float[] x, int d)
        {
            var r = x;
            for (var b = 0; b < c.Batch; b++)
                for (var h = 0; h < c.KvHeads; h++)
                {
                    var filled = (int)(clean.Position[b] % c.SegmentLength);
                    var row = (b * c.KvHeads + h) * c.SegmentLength;
                    r = Fill(r, (row + filled) * d, (c.SegmentLength - filled) * d, 5f);
                }
            return r;
        }
        Assert.That(dirty.SegmentKey, Is.Not.EqualTo(clean.SegmentKey), "setup: the garbage went somewhere");

        using var session = new SegmentAttentionSession(c.Options);
        var want = session.Run(c, c.Seq, c.Query, c.Key, c.Value, clean);
        var got = session.Run(c, c.Seq, c.Query, c.Key, c.Value, dirty);
        TensorAssert.Close(want.Y, c.Reference(clean).Output, Tolerance.Float32, "clean state against the reference");
        Assert.That(got.Y, Is.EqualTo(want.Y), "output");
        Assert.That(got.Present!.MemoryKey, Is.EqualTo(want.Present!.MemoryKey), "memory key");
        Assert.That(got.Present.MemoryValue, Is.EqualTo(want.Present.MemoryValue), "memory value");
        Assert.That(got.Present.SegmentKey, Is.EqualTo(want.Present.SegmentKey), "segment key");
        Assert.That(got.Present.SegmentValue, Is.EqualTo(want.Present.SegmentValue), "segment value");

        var empty = session.Run(c, 0, [], [], [], dirty).Present!;
        Assert.That(empty.SegmentKey, Is.EqualTo(clean.SegmentKey), "empty call: unused rows cleared");
        Assert.That(empty.MemoryValue, Is.EqualTo(clean.MemoryValue), "empty call: memory before the first switch cleared");
    }

    private static float[] Fill(float[] x, int start, int count, float value)
    {
        var r = (float[])x.Clone();
        Array.Fill(r, value, start, count);
        return r;
    }

    [Test]
    public void StateOutputsMayBeLeftOut()
    {
        var c = new SegmentAttentionCase(2, 20, 4, 2, 8, 6, 6, History: 4);
        var past = c.Past;
        using var full = new SegmentAttentionSession(c.Options);
        using var bare = new SegmentAttentionSession(c.Options, presentOutputs: 0);
        using var some = new SegmentAttentionSession(c.Options, presentOutputs: 2);
        var want = full.Run(c, c.Seq, c.Query, c.Key, c.Value, past).Y;
        Assert.That(bare.Run(c, c.Seq, c.Query, c.Key, c.Value, past).Y, Is.EqualTo(want));
        var partial = some.Run(c, c.Seq, c.Query, c.Key, c.Value, past);
        Assert.That(partial.Y, Is.EqualTo(want));
        Assert.That(partial.All["present_memory_value"].Floats, Is.EqualTo(c.Reference(past).MemoryValue.Select(x => (float)x).ToArray()));
    }

    [Test]
    public void IntraOpThreadPoolGivesTheSameBitsAsOneThread()
    {
        var c = new SegmentAttentionCase(4, 40, 8, 4, 32, 32, 9);
        using var single = new SegmentAttentionSession(c.Options, pastInputs: 0, intraOpThreads: 1);
        using var pooled = new SegmentAttentionSession(c.Options, pastInputs: 0, intraOpThreads: 2);
        var a = single.Run(c, c.Seq, c.Query, c.Key, c.Value, null);
        var b = pooled.Run(c, c.Seq, c.Query, c.Key, c.Value, null);
        Assert.That(b.Y, Is.EqualTo(a.Y));
        Assert.That(b.Present!.MemoryKey, Is.EqualTo(a.Present!.MemoryKey));
        Assert.That(b.Present.SegmentValue, Is.EqualTo(a.Present.SegmentValue));
    }

    [Test]
    public void Float16ActivationsWithFloat32State()
    {
        var c = new SegmentAttentionCase(2, 30, 4, 2, 16, 8, 7, History: 5, HistoryStep: 4);
        var past = c.Past;
        var model = SegmentAttentionSession.BuildModel(c.Options, activation: TensorProto.Types.DataType.Float16);
        using var runner = new TypedModelRunner(model);
        static Float16[] Half(float[] x) => x.Select(v => (Float16)v).ToArray();
        static float[] RoundTrip(float[] x) => x.Select(v => (float)(Float16)v).ToArray();
        var got = runner.Run(new Dictionary<string, TypedTensor>
        {
            ["query"] = TypedTensor.Of(Half(c.Query), c.Batch, c.Seq, c.QHeads * c.Dk),
            ["key"] = TypedTensor.Of(Half(c.Key), c.Batch, c.Seq, c.KvHeads * c.Dk),
            ["value"] = TypedTensor.Of(Half(c.Value), c.Batch, c.Seq, c.KvHeads * c.Dv),
            ["past_memory_key"] = TypedTensor.Of(past.MemoryKey, c.KeyStateShape),
            ["past_memory_value"] = TypedTensor.Of(past.MemoryValue, c.ValueStateShape),
            ["past_segment_key"] = TypedTensor.Of(past.SegmentKey, c.KeyStateShape),
            ["past_segment_value"] = TypedTensor.Of(past.SegmentValue, c.ValueStateShape),
            ["past_position"] = TypedTensor.Of(past.Position, c.Batch),
        }, "output", "present_memory_key", "present_segment_value", "present_position");
        var want = SegmentAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv,
            RoundTrip(c.Query), RoundTrip(c.Key), RoundTrip(c.Value),
            past.MemoryKey, past.MemoryValue, past.SegmentKey, past.SegmentValue, past.Position);
        Assert.That(got["output"].Data, Is.TypeOf<Float16[]>());
        var y = ((Float16[])got["output"].Data).Select(h => (float)h).ToArray();
        TensorAssert.Close(y, want.Output, Tolerance.Float16, $"{c}: float16 output");
        TensorAssert.Close(got["present_memory_key"].Floats, want.MemoryKey, Tolerance.Float32, $"{c}: float32 memory");
        TensorAssert.Close(got["present_segment_value"].Floats, want.SegmentValue, Tolerance.Float32, $"{c}: float32 segment");
        Assert.That(got["present_position"].Longs, Is.EqualTo(want.Position));
    }
}
