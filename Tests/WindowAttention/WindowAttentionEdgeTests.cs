using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.WindowAttention;

/// <summary>Hand-worked values of the documented rule, partial graphs, empty calls, threads, float16.</summary>
[TestFixture]
public class WindowAttentionEdgeTests
{
    private static float[] RunOneHead(int window, int sinks, float softcap, float[] q, float[] k, float[] v)
    {
        var c = new WindowAttentionCase(1, q.Length, 1, 1, 1, 1, window, sinks, Scale: 1f, Softcap: softcap);
        using var session = new WindowAttentionSession(c.Options, pastInputs: 0);
        return session.Run(c, q.Length, q, k, v, null).Y;
    }

    private static double Mix(double[] scores, double[] values)
    {
        var max = scores.Max();
        var e = scores.Select(s => Math.Exp(s - max)).ToArray();
        return e.Zip(values, (w, x) => w * x).Sum() / e.Sum();
    }

    [Test]
    public void WindowByHand()
    {
        // Window 2: position 0 sees {0}, 1 sees {0, 1}, 2 sees {1, 2}, 3 sees {2, 3}.
        float[] q = [0.5f, 1f, -2f, 3f], k = [1f, 2f, 0.5f, -1f], v = [10f, 20f, 30f, 40f];
        var y = RunOneHead(2, 0, 0f, q, k, v);
        TensorAssert.Close(y, [10.0, Mix([1, 2], [10, 20]), Mix([-4, -1], [20, 30]), Mix([1.5, -3], [30, 40])], Tolerance.Float32, "y");
    }

    [Test]
    public void SinksByHand()
    {
        // Window 1, one sink: position 0 sees {0} (sink and window at once, counted once), p >= 1 sees {0, p}.
        float[] q = [0.5f, 1f, -2f, 3f], k = [1f, 2f, 0.5f, -1f], v = [10f, 20f, 30f, 40f];
        var y = RunOneHead(1, 1, 0f, q, k, v);
        TensorAssert.Close(y, [10.0, Mix([1, 2], [10, 20]), Mix([-2, -1], [10, 30]), Mix([3, -3], [10, 40])], Tolerance.Float32, "y");
    }

    [Test]
    public void SoftcapByHand()
    {
        // Scores 4 * (1, 3) = 4, 12, capped to 2 tanh(2) and 2 tanh(6).
        var y = RunOneHead(2, 0, 2f, [1f, 4f], [1f, 3f], [10f, 20f]);
        TensorAssert.Close(y, [10.0, Mix([2 * Math.Tanh(2), 2 * Math.Tanh(6)], [10, 20])], Tolerance.Float32, "y");
    }

    [Test]
    public void LargeScoresDoNotOverflow()
    {
        // Scores near 1e4: exp without max subtraction would be infinite. Position 1 puts nearly all weight on key 0.
        var y = RunOneHead(4, 0, 0f, [100f, 100f], [100f, 99f], [1f, 2f]);
        TensorAssert.Close(y, [1.0, Mix([10000, 9900], [1, 2])], Tolerance.Float32, "y");
        Assert.That(y.All(float.IsFinite), Is.True);
    }

    [Test]
    public void EmptySequencePassesTheStateThrough()
    {
        var c = new WindowAttentionCase(2, 0, 4, 2, 8, 6, 3, Sinks: 2, History: 5);
        var past = c.Past;
        using var session = new WindowAttentionSession(c.Options);
        var got = session.Run(c, 0, [], [], [], past);
        Assert.That(got.YShape, Is.EqualTo(new long[] { 2, 0, 24 }));
        Assert.That(got.Present!.Key, Is.EqualTo(past.Key));
        Assert.That(got.Present.Value, Is.EqualTo(past.Value));
        Assert.That(got.Present.Position, Is.EqualTo(past.Position));
    }

    [Test]
    public void StateOutputsMayBeLeftOut()
    {
        var c = new WindowAttentionCase(2, 20, 4, 2, 8, 6, 6, Sinks: 1, History: 4);
        var past = c.Past;
        using var full = new WindowAttentionSession(c.Options);
        using var bare = new WindowAttentionSession(c.Options, presentOutputs: 0);
        using var keyOnly = new WindowAttentionSession(c.Options, presentOutputs: 1);
        var want = full.Run(c, c.Seq, c.Query, c.Key, c.Value, past).Y;
        Assert.That(bare.Run(c, c.Seq, c.Query, c.Key, c.Value, past).Y, Is.EqualTo(want));
        Assert.That(keyOnly.Run(c, c.Seq, c.Query, c.Key, c.Value, past).Y, Is.EqualTo(want));
    }

    [Test]
    public void IntraOpThreadPoolGivesTheSameBitsAsOneThread()
    {
        var c = new WindowAttentionCase(4, 40, 8, 4, 32, 32, 9, Sinks: 2);
        using var single = new WindowAttentionSession(c.Options, pastInputs: 0, intraOpThreads: 1);
        using var pooled = new WindowAttentionSession(c.Options, pastInputs: 0, intraOpThreads: 2);
        var a = single.Run(c, c.Seq, c.Query, c.Key, c.Value, null);
        var b = pooled.Run(c, c.Seq, c.Query, c.Key, c.Value, null);
        Assert.That(b.Y, Is.EqualTo(a.Y));
        Assert.That(b.Present!.Key, Is.EqualTo(a.Present!.Key));
    }

    [Test]
    public void Float16ActivationsWithFloat32State()
    {
        var c = new WindowAttentionCase(2, 30, 4, 2, 16, 8, 7, Sinks: 2, History: 5);
        var past = c.Past;
        var model = WindowAttentionSession.BuildModel(c.Options, activation: TensorProto.Types.DataType.Float16);
        using var runner = new TypedModelRunner(model);
        static Float16[] Half(float[] x) => x.Select(v => (Float16)v).ToArray();
        static float[] RoundTrip(float[] x) => x.Select(v => (float)(Float16)v).ToArray();
        var got = runner.Run(new Dictionary<string, TypedTensor>
        {
            ["query"] = TypedTensor.Of(Half(c.Query), c.Batch, c.Seq, c.QHeads * c.Dk),
            ["key"] = TypedTensor.Of(Half(c.Key), c.Batch, c.Seq, c.KvHeads * c.Dk),
            ["value"] = TypedTensor.Of(Half(c.Value), c.Batch, c.Seq, c.KvHeads * c.Dv),
            ["past_key_cache"] = TypedTensor.Of(past.Key, c.CacheKeyShape),
            ["past_value_cache"] = TypedTensor.Of(past.Value, c.CacheValueShape),
            ["past_position"] = TypedTensor.Of(past.Position, c.Batch),
        }, "output", "present_key_cache");
        var want = WindowAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv,
            RoundTrip(c.Query), RoundTrip(c.Key), RoundTrip(c.Value), past.Key, past.Value, past.Position);
        var y = ((Float16[])got["output"].Data).Select(h => (float)h).ToArray();
        TensorAssert.Close(y, want.Output, Tolerance.Float16, $"{c}: float16 output");
        TensorAssert.Close(got["present_key_cache"].Floats, want.KeyCache, Tolerance.Float32, $"{c}: float32 cache");
    }
}
