using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.LinearAttention;

/// <summary>Bad models and inputs give an ORT error naming the problem; the process and the session survive.</summary>
[TestFixture]
public class LinearAttentionBadInputTests
{
    private static readonly LinearAttentionCase Good = new(2, 5, 4, 2, 8, 6);

    private static void AssertStillWorks(LinearAttentionSession session)
    {
        var c = Good;
        var got = session.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, c.PastState, c.PastNormalizer, c.StateShape, c.NormalizerShape);
        TensorAssert.Close(got.Y, c.Reference(withPast: true).Output, Tolerance.Float32, "run after a failure");
    }

    [Test]
    public void QueryOfWrongRank()
    {
        using var s = new LinearAttentionSession(Good.Options, withPast: true, declareShapes: false);
        var c = Good;
        OrtAssert.RunFails(() => s.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, c.PastState, c.PastNormalizer, c.StateShape, c.NormalizerShape,
                queryShape: [c.Batch * c.Seq, c.QHeads * c.Dk]),
            "query must have rank 3 [batch, sequence, q_num_heads * head_dim], got shape [10, 32]");
        AssertStillWorks(s);
    }

    [Test]
    public void BatchMismatch()
    {
        using var s = new LinearAttentionSession(Good.Options, withPast: true);
        var c = Good;
        OrtAssert.RunFails(() => s.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, c.PastState, c.PastNormalizer, c.StateShape, c.NormalizerShape,
                queryShape: [1, c.Batch * c.Seq, c.QHeads * c.Dk]),
            "must agree on batch and sequence length");
        AssertStillWorks(s);
    }

    [Test]
    public void KeyHeadDimMismatch()
    {
        using var s = new LinearAttentionSession(Good.Options, withPast: true);
        var c = Good;
        var badKey = new float[c.Batch * c.Seq * c.KvHeads * (c.Dk + 1)];
        OrtAssert.RunFails(() => s.Run(c.Batch, c.Seq, c.Query, badKey, c.Value, c.PastState, c.PastNormalizer, c.StateShape, c.NormalizerShape),
            "key's last dimension 18 must be kv_num_heads * head_dim = 2 * 8 = 16");
        AssertStillWorks(s);
    }

    [Test]
    public void QueryNotDivisibleByHeads()
    {
        using var s = new LinearAttentionSession(Good.Options, withPast: true);
        var c = Good;
        var badQuery = new float[c.Batch * c.Seq * 30];
        OrtAssert.RunFails(() => s.Run(c.Batch, c.Seq, badQuery, c.Key, c.Value, c.PastState, c.PastNormalizer, c.StateShape, c.NormalizerShape),
            "query's last dimension 30 is not a positive multiple of q_num_heads=4");
        AssertStillWorks(s);
    }

    [Test]
    public void StateOfWrongShape()
    {
        using var s = new LinearAttentionSession(Good.Options, withPast: true);
        var c = Good;
        var badState = new float[c.Batch * c.KvHeads * c.Dk * (c.Dv + 1)];
        OrtAssert.RunFails(() => s.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, badState, c.PastNormalizer, [c.Batch, c.KvHeads, c.Dk, c.Dv + 1], c.NormalizerShape),
            "past_state has shape [2, 2, 8, 7]; expected [batch, kv_num_heads, head_dim, v_head_dim] = [2, 2, 8, 6]");
        AssertStillWorks(s);
    }

    [Test]
    public void NormalizerOfWrongShape()
    {
        using var s = new LinearAttentionSession(Good.Options, withPast: true);
        var c = Good;
        OrtAssert.RunFails(() => s.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, c.PastState, new float[c.Batch * c.Dk * c.KvHeads], c.StateShape, [c.Batch, c.Dk, c.KvHeads]),
            "past_normalizer has shape [2, 8, 2]");
        AssertStillWorks(s);
    }

    [Test]
    public void StateOfWrongRank()
    {
        using var s = new LinearAttentionSession(Good.Options, withPast: true, declareShapes: false);
        var c = Good;
        OrtAssert.RunFails(() => s.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, c.PastState, c.PastNormalizer, [c.Batch * c.KvHeads, c.Dk, c.Dv], c.NormalizerShape),
            "past_state has shape [4, 8, 6]");
        AssertStillWorks(s);
    }

    [TestCase("softmax", "unknown feature_map 'softmax'; expected one of: elu_plus_one, relu, identity")]
    public void UnknownFeatureMapFailsAtSessionCreation(string map, string message)
    {
        var model = LinearAttentionSession.BuildModel(Good.Options with { FeatureMap = map }, withPast: false);
        var e = Assert.Throws<OnnxRuntimeException>(() => SessionFactory.Create(model).Dispose());
        Assert.That(e!.Message, Does.Contain(message));
    }

    [TestCase(4, 3, "kv_num_heads must be positive and divide q_num_heads (4), got 3")]
    [TestCase(0, 0, "q_num_heads must be in [1, 65536], got 0")]
    [TestCase(2, 4, "kv_num_heads must be positive and divide q_num_heads (2), got 4")]
    public void BadHeadCountsFailAtSessionCreation(int q, int kv, string message)
    {
        var model = LinearAttentionSession.BuildModel(new LinearAttentionNode.Options(q, kv), withPast: false);
        var e = Assert.Throws<OnnxRuntimeException>(() => SessionFactory.Create(model).Dispose());
        Assert.That(e!.Message, Does.Contain(message));
    }

    [Test]
    public void NegativeEpsilonFailsAtSessionCreation()
    {
        var model = LinearAttentionSession.BuildModel(Good.Options with { Epsilon = -1f }, withPast: false);
        var e = Assert.Throws<OnnxRuntimeException>(() => SessionFactory.Create(model).Dispose());
        Assert.That(e!.Message, Does.Contain("epsilon must be finite and non-negative"));
    }
}
