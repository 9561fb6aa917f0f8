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
