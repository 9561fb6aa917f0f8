using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SummaryAttention;

/// <summary>Hand-worked values of the documented rule, empty and partial graphs, threads and float16.</summary>
[TestFixture]
public class SummaryAttentionEdgeTests
{
    private static float[] RunOneHead(string summary, int window, float alpha, float[] q, float[] k, float[] v)
    {
        var c = new SummaryAttentionCase(1, q.Length, 1, 1, 1, 1, summary, Window: window, Alpha: alpha, Scale: 1f);
        using var session = new SummaryAttentionSession(c.Options, pastInputs: 0);
        return session.Run(c, q.Length, q, k, v, null).Y;
    }

    [Test]
    public void CumulativeByHand()
    {
        // Step 1: both slots are (1, 10). Step 2: summary (2, 15), token (3, 20), q = 2 -> scores 4 and 6.
        var y = RunOneHead("cumulative", 0, 0.9f, [0.5f, 2f], [1f, 3f], [10f, 20f]);
        var e4 = Math.Exp(4);
        var e6 = Math.Exp(6);
        TensorAssert.Close(y, [10.0, (15 * e4 + 20 * e6) / (e4 + e6)], Tolerance.Float32, "y");
    }

    [Test]
    public void MovingByHand()
    {
        // Window 2. Step 3: summary = mean of tokens 2 and 3 = (5, 50), token (6, 60), q = 1 -> scores 5 and 6.
        var y = RunOneHead("moving", 2, 0.9f, [0f, 0f, 1f], [100f, 4f, 6f], [1000f, 40f, 60f]);
        var e5 = Math.Exp(5);
        var e6 = Math.Exp(6);
        TensorAssert.Close(y.AsSpan(2), [(50 * e5 + 60 * e6) / (e5 + e6)], Tolerance.Float32, "y at step 3");
    }

    [Test]
    public void EmaByHand()
    {
        // alpha 0.5: e1 = 0.5 k1, kbar1 = k1; e2 = 0.25 k1 + 0.5 k2, kbar2 = (k1 + 2 k2) / 3 = 3 for k = (1, 4).
        // Values likewise: vbar2 = 30. Step 2 with q = 1: scores 3 (summary) and 4 (token).
        var y = RunOneHead("ema", 0, 0.5f, [7f, 1f], [1f, 4f], [10f, 40f]);
        var e3 = Math.Exp(3);
        var e4 = Math.Exp(4);
        TensorAssert.Close(y, [10.0, (30 * e3 + 40 * e4) / (e3 + e4)], Tolerance.Float32, "y");
    }

    [TestCase("ema", 0, 0f)]
    [TestCase("moving", 1, 0.9f)]
    public void SummariesOfOnlyTheCurrentTokenReturnItsValue(string summary, int window, float alpha)
    {
        // Every slot then holds (k_i, v_i), so whatever the scores, y_i = v_i of the head's KV head.
        var c = new SummaryAttentionCase(2, 9, 4, 2, 5, 3, summary, Window: window, Alpha: alpha);
        using var session = new SummaryAttentionSession(c.Options, pastInputs: 0);
        var y = session.Run(c, c.Seq, c.Query, c.Key, c.Value, null).Y;
        var v = c.Value;
        var expected = new double[y.Length];
        for (var bt = 0; bt < c.Batch * c.Seq; bt++)
            for (var h = 0; h < c.QHeads; h++)
                for (var j = 0; j < c.Dv; j++)
                    expected[(bt * c.QHeads + h) * c.Dv + j] = v[(bt * c.KvHeads + h / 2) * c.Dv + j];
        TensorAssert.Close(y, expected, Tolerance.Float32, "y = v");
    }

    [TestCase("cumulative", 0)]
    [TestCase("moving", 3)]
    [TestCase("ema", 0)]
    public void EmptySequencePassesTheStateThrough(string summary, int window)
    {
        var c = new SummaryAttentionCase(2, 0, 4, 2, 8, 6, summary, Window: window, History: 5);
        var past = c.Past;
        using var session = new SummaryAttentionSession(c.Options, c.PastInputs);
        var got = session.Run(c, 0, [], [], [], past);
        Assert.That(got.YShape, Is.EqualTo(new long[] { 2, 0, 24 }));
        Assert.That(got.Present!.KeySummary, Is.EqualTo(past.KeySummary));
        Assert.That(got.Present.ValueSummary, Is.EqualTo(past.ValueSummary));
        Assert.That(got.Present.Count, Is.EqualTo(past.Count));
        Assert.That(got.Present.KeyWindow, Is.EqualTo(past.KeyWindow));
    }

    [Test]
    public void StateOutputsMayBeLeftOut()
    {
        var c = new SummaryAttentionCase(2, 20, 4, 2, 8, 6, "moving", Window: 6, History: 4);
        var past = c.Past;
        using var full = new SummaryAttentionSession(c.Options, c.PastInputs);
        using var bare = new SummaryAttentionSession(c.Options, c.PastInputs, presentOutputs: 0);
        var want = full.Run(c, c.Seq, c.Query, c.Key, c.Value, past).Y;
        Assert.That(bare.Run(c, c.Seq, c.Query, c.Key, c.Value, past).Y, Is.EqualTo(want));
    }

    [TestCase("cumulative")]
    [TestCase("ema")]
    public void KindsWithoutAWindowTakeAndGiveEmptyRingBuffers(string summary)
    {
        // A graph written for moving summaries carries all five state tensors; the other kinds accept them with 0 rows.
        var c = new SummaryAttentionCase(2, 7, 4, 2, 8, 6, summary, History: 3);
        var past = c.Past;
        using var three = new SummaryAttentionSession(c.Options, pastInputs: 3);
        using var five = new SummaryAttentionSession(c.Options, pastInputs: 5);
        var want = three.Run(c, c.Seq, c.Query, c.Key, c.Value, past);
        var got = five.Run(c, c.Seq, c.Query, c.Key, c.Value, past);
        Assert.That(got.Y, Is.EqualTo(want.Y));
        Assert.That(got.All["present_key_window"].Shape, Is.EqualTo(new long[] { 2, 2, 0, 8 }));
        Assert.That(got.All["present_value_window"].Shape, Is.EqualTo(new long[] { 2, 2, 0, 6 }));
    }

    [Test]
    public void IntraOpThreadPoolGivesTheSameBitsAsOneThread()
    {
        var c = new SummaryAttentionCase(4, 40, 8, 4, 32, 32, "moving", Window: 9);
        using var single = new SummaryAttentionSession(c.Options, pastInputs: 0, intraOpThreads: 1);
        using var pooled = new SummaryAttentionSession(c.Options, pastInputs: 0, intraOpThreads: 2);
        var a = single.Run(c, c.Seq, c.Query, c.Key, c.Value, null);
        var b = pooled.Run(c, c.Seq, c.Query, c.Key, c.Value, null);
        Assert.That(b.Y, Is.EqualTo(a.Y));
        Assert.That(b.Present!.KeySummary, Is.EqualTo(a.Present!.KeySummary));
    }

    [Test]
    public void Float16ActivationsWithFloat32State()
    {
        var c = new SummaryAttentionCase(2, 30, 4, 2, 16, 8, "ema", Alpha: 0.8f, NumSlots: 2, History: 5);
        var past = c.Past;
        var model = SummaryAttentionSession.BuildModel(c.Options, c.PastInputs, activation: TensorProto.Types.DataType.Float16);
        using var runner = new TypedModelRunner(model);
        static Float16[] Half(float[] x) => x.Select(v => (Float16)v).ToArray();
        static float[] RoundTrip(float[] x) => x.Select(v => (float)(Float16)v).ToArray();
        var got = runner.Run(new Dictionary<string, TypedTensor>
        {
            ["query"] = TypedTensor.Of(Half(c.Query), c.Batch, c.Seq, c.QHeads * c.Dk),
            ["key"] = TypedTensor.Of(Half(c.Key), c.Batch, c.Seq, c.KvHeads * c.Dk),
            ["value"] = TypedTensor.Of(Half(c.Value), c.Batch, c.Seq, c.KvHeads * c.Dv),
            ["past_key_summary"] = TypedTensor.Of(past.KeySummary, c.KeySummaryShape),
            ["past_value_summary"] = TypedTensor.Of(past.ValueSummary, c.ValueSummaryShape),
            ["past_count"] = TypedTensor.Of(past.Count, c.Batch),
        }, "output", "present_key_summary");
        var want = SummaryAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv,
            RoundTrip(c.Query), RoundTrip(c.Key), RoundTrip(c.Value), past.KeySummary, past.ValueSummary, past.Count);
        var y = ((Float16[])got["output"].Data).Select(h => (float)h).ToArray();
        TensorAssert.Close(y, want.Output, Tolerance.Float16, $"{c}: float16 output");
        TensorAssert.Close(got["present_key_summary"].Floats, want.KeySummary, Tolerance.Float32, $"{c}: float32 state");
    }
}
