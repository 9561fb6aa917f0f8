using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.HybridAttention;

/// <summary>Hand-worked values of the documented rule, plain softmax attention inside the window, partial graphs, threads, float16.</summary>
[TestFixture]
public class HybridAttentionEdgeTests
{
    private static float[] RunOneHead(string compress, int window, float[] q, float[] k, float[] v)
    {
        var c = new HybridAttentionCase(1, q.Length, 1, 1, 1, 1, window, compress, Scale: 1f, Epsilon: 0f);
        using var session = new HybridAttentionSession(c.Options, pastInputs: 0);
        return session.Run(c, q.Length, q, k, v, null).Y;
    }

    [Test]
    public void LinearByHand()
    {
        // Window 1. Step 2: window (2, 20); evicted token 1, phi(0.5) = 1.5, so y_lin = 10 whatever q; gate 1/2.
        // Step 3: window (-1, 30); evicted phi = 1.5 and 3 with values 10 and 20: y_lin = (15 + 60) / 4.5; gate 2/3.
        var y = RunOneHead("linear", 1, [0.3f, 1f, -2f], [0.5f, 2f, -1f], [10f, 20f, 30f]);
        TensorAssert.Close(y, [10.0, 15.0, 30.0 / 3 + 2.0 / 3 * (75.0 / 4.5)], Tolerance.Float32, "y");
    }

    [Test]
    public void MeanByHand()
    {
        // Window 1. Step 2: slots (2, 20) and the evicted mean (0.5, 10), q = 1: scores 2 and 0.5.
        // Step 3: slots (-1, 30) and mean (1.25, 15), q = 2: scores -2 and 2.5.
        var y = RunOneHead("mean", 1, [0.3f, 1f, 2f], [0.5f, 2f, -1f], [10f, 20f, 30f]);
        double e2 = Math.Exp(2), e05 = Math.Exp(0.5), em2 = Math.Exp(-2), e25 = Math.Exp(2.5);
        TensorAssert.Close(y, [10.0, (20 * e2 + 10 * e05) / (e2 + e05), (30 * em2 + 15 * e25) / (em2 + e25)], Tolerance.Float32, "y");
    }

    [TestCase("linear")]
    [TestCase("mean")]
    public void WithinTheWindowItIsCausalSoftmaxAttention(string compress)
    {
        // Nothing leaves a 40-token window in 30 tokens: both kinds must be exact causal attention, computed here directly.
        var c = new HybridAttentionCase(2, 30, 4, 2, 8, 5, 40, compress, Scale: 0.4f);
        using var session = new HybridAttentionSession(c.Options, pastInputs: 0);
        var y = session.Run(c, c.Seq, c.Query, c.Key, c.Value, null).Y;
        float[] q = c.Query, k = c.Key, v = c.Value;
        var expected = new double[y.Length];
        for (var b = 0; b < c.Batch; b++)
            for (var h = 0; h < c.QHeads; h++)
                for (var i = 0; i < c.Seq; i++)
                {
                    var kvh = h / 2;
                    var scores = new double[i + 1];
                    for (var j = 0; j <= i; j++)
                        for (var d = 0; d < c.Dk; d++)
                            scores[j] += 0.4 * q[((b * c.Seq + i) * c.QHeads + h) * c.Dk + d] * k[((b * c.Seq + j) * c.KvHeads + kvh) * c.Dk + d];
                    var max = scores.Max();
                    var weights = scores.Select(s => Math.Exp(s - max)).ToArray();
                    var total = weights.Sum();
                    for (var j = 0; j <= i; j++)
                        for (var d = 0; d < c.Dv; d++)
                            expected[((b * c.Seq + i) * c.QHeads + h) * c.Dv + d] += weights[j] / total * v[((b * c.Seq + j) * c.KvHeads + kvh) * c.Dv + d];
                }
        TensorAssert.Close(y, expected, Tolerance.Float32, "causal softmax");
    }

    [TestCase("linear")]
    [TestCase("mean")]
    public void EmptySequencePassesTheStateThrough(string compress)
    {
        var c = new HybridAttentionCase(2, 0, 4, 2, 8, 6, 3, compress, History: 5);
        var past = c.Past;
        using var session = new HybridAttentionSession(c.Options);
        var got = session.Run(c, 0, [], [], [], past);
        Assert.That(got.YShape, Is.EqualTo(new long[] { 2, 0, 24 }));
        Assert.That(got.Present!.Key, Is.EqualTo(past.Key));
        Assert.That(got.Present.Value, Is.EqualTo(past.Value));
        Assert.That(got.Present.Position, Is.EqualTo(past.Position));
        Assert.That(got.Present.CompressedKey, Is.EqualTo(past.CompressedKey));
        Assert.That(got.Present.CompressedValue, Is.EqualTo(past.CompressedValue));
    }

    [Test]
    public void StateOutputsMayBeLeftOut()
    {
        var c = new HybridAttentionCase(2, 20, 4, 2, 8, 6, 6, "linear", History: 4);
        var past = c.Past;
        using var full = new HybridAttentionSession(c.Options);
        using var bare = new HybridAttentionSession(c.Options, presentOutputs: 0);
        var want = full.Run(c, c.Seq, c.Query, c.Key, c.Value, past).Y;
        Assert.That(bare.Run(c, c.Seq, c.Query, c.Key, c.Value, past).Y, Is.EqualTo(want));
    }

    [Test]
    public void IntraOpThreadPoolGivesTheSameBitsAsOneThread()
    {
        var c = new HybridAttentionCase(4, 40, 8, 4, 32, 32, 9, "linear");
        using var single = new HybridAttentionSession(c.Options, pastInputs: 0, intraOpThreads: 1);
        using var pooled = new HybridAttentionSession(c.Options, pastInputs: 0, intraOpThreads: 2);
        var a = single.Run(c, c.Seq, c.Query, c.Key, c.Value, null);
        var b = pooled.Run(c, c.Seq, c.Query, c.Key, c.Value, null);
        Assert.That(b.Y, Is.EqualTo(a.Y));
        Assert.That(b.Present!.CompressedValue, Is.EqualTo(a.Present!.CompressedValue));
    }

    [TestCase("linear")]
    [TestCase("mean")]
    public void Float16ActivationsWithFloat32State(string compress)
    {
        var c = new HybridAttentionCase(2, 30, 4, 2, 16, 8, 7, compress, History: 5);
        var past = c.Past;
        var model = HybridAttentionSession.BuildModel(c.Options, activation: TensorProto.Types.DataType.Float16);
        using var runner = new TypedModelRunner(model);
        static Float16[] Half(float[] x) => x.Select(v => (Float16)v).ToArray();
        static float[] RoundTrip(float[] x) => x.Select(v => (float)(Float16)v).ToArray();
        var got = runner.Run(new Dictionary<string, TypedTensor>
        {
            ["query"] = TypedTensor.Of(Half(c.Query), c.Batch, c.Seq, c.QHeads * c.Dk),
            ["key"] = TypedTensor.Of(Half(c.Key), c.Batch, c.Seq, c.KvHeads * c.Dk),
            ["value"] = TypedTensor.Of(Half(c.Value), c.Batch, c.Seq, c.KvHeads * c.Dv),
            ["past_key"] = TypedTensor.Of(past.Key, c.CacheKeyShape),
            ["past_value"] = TypedTensor.Of(past.Value, c.CacheValueShape),
            ["past_position"] = TypedTensor.Of(past.Position, c.Batch),
            ["past_compressed_key"] = TypedTensor.Of(past.CompressedKey, c.CompressedKeyShape),
            ["past_compressed_value"] = TypedTensor.Of(past.CompressedValue, c.CompressedValueShape),
        }, "output", "present_compressed_value");
        var want = HybridAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv,
            RoundTrip(c.Query), RoundTrip(c.Key), RoundTrip(c.Value), past.Key, past.Value, past.Position, past.CompressedKey, past.CompressedValue);
        var y = ((Float16[])got["output"].Data).Select(h => (float)h).ToArray();
        TensorAssert.Close(y, want.Output, Tolerance.Float16, $"{c}: float16 output");
        TensorAssert.Close(got["present_compressed_value"].Floats, want.CompressedValue, Tolerance.Float32, $"{c}: float32 state");
    }
}
