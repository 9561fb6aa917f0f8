using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.LinearAttention;

/// <summary>Bad update-rule inputs and attributes give an ORT error naming the problem; the session and the process survive.</summary>
[TestFixture]
public class LinearAttentionUpdateRuleBadInputTests
{
    private static readonly LinearAttentionCase Good = new(2, 5, 4, 2, 8, 6, "identity", false, UpdateRule: "gated_delta");

    private static void AssertStillWorks(LinearAttentionSession session, LinearAttentionCase c)
    {
        var got = c.Run(session, withPast: false);
        TensorAssert.Close(got.Y, c.Reference(withPast: false).Output, Tolerance.Float32, "run after a failure");
    }

    private static void AssertCreationFails(LinearAttentionCase c, string expectedFragment)
    {
        var model = LinearAttentionSession.BuildModel(c.Options, withPast: false);
        var e = Assert.Throws<OnnxRuntimeException>(() => SessionFactory.Create(model).Dispose());
        Assert.That(e!.Message, Does.Contain(expectedFragment));
        // A good model still loads and runs in the same process.
        using var good = new LinearAttentionSession(Good.Options, withPast: false);
        AssertStillWorks(good, Good);
    }

    [Test]
    public void DecayOfWrongWidth()
    {
        var c = Good;
        using var s = new LinearAttentionSession(c.Options, withPast: false);
        OrtAssert.RunFails(() => s.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, decay: new float[2 * 5 * 7], beta: c.Beta),
            "decay has shape [2, 5, 7]; expected [batch, sequence, kv_num_heads * head_dim] = [2, 5, 16] (per key dimension) "
            + "or [batch, sequence, kv_num_heads] = [2, 5, 2] (per head)");
        AssertStillWorks(s, c);
    }

    [Test]
    public void DecayOfWrongRankOrSequence()
    {
        var c = Good;
        using var s = new LinearAttentionSession(c.Options, withPast: false, declareShapes: false);
        OrtAssert.RunFails(() => s.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, decay: c.Decay, decayShape: [10, 16], beta: c.Beta),
            "decay has shape [10, 16]; expected");
        OrtAssert.RunFails(() => s.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, decay: new float[2 * 4 * 16], decayShape: [2, 4, 16], beta: c.Beta),
            "decay has shape [2, 4, 16]; expected");
        AssertStillWorks(s, c);
    }

    [Test]
    public void BetaOfWrongShape()
    {
        var c = Good;
        using var s = new LinearAttentionSession(c.Options, withPast: false, declareShapes: false);
        OrtAssert.RunFails(() => s.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, decay: c.Decay, beta: new float[2 * 5 * 3]),
            "beta has shape [2, 5, 3]; expected [batch, sequence, kv_num_heads] = [2, 5, 2] or [batch, sequence, 1] = [2, 5, 1]");
        OrtAssert.RunFails(() => s.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, decay: c.Decay, beta: new float[2 * 5 * 2], betaShape: [2, 5, 2, 1]),
            "beta has shape [2, 5, 2, 1]; expected");
        AssertStillWorks(s, c);
    }

    [TestCase("gated", "update_rule=gated needs input 'decay' (index 5), the log-space gate of shape [batch, sequence, kv_num_heads * head_dim]")]
    [TestCase("gated_delta", "update_rule=gated_delta needs input 'decay' (index 5)")]
    public void MissingDecay(string rule, string message)
    {
        var c = Good with { UpdateRule = rule };
        using var s = new LinearAttentionSession(c.Options, withPast: false, withDecay: false);
        // The model itself lacks the input, so every run fails the same clean way; the session is not left broken.
        OrtAssert.RunFails(() => s.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, beta: c.Beta), message);
        OrtAssert.RunFails(() => s.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, beta: c.Beta), message);
        using var good = new LinearAttentionSession(c.Options, withPast: false);
        AssertStillWorks(good, c);
    }

    [TestCase("delta", "update_rule=delta needs input 'beta' (index 6), the write strength of shape [batch, sequence, kv_num_heads] = [2, 5, 2]")]
    [TestCase("gated_delta", "update_rule=gated_delta needs input 'beta' (index 6)")]
    public void MissingBeta(string rule, string message)
    {
        var c = Good with { UpdateRule = rule };
        using var s = new LinearAttentionSession(c.Options, withPast: false, withBeta: false);
        OrtAssert.RunFails(() => s.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, decay: c.Decay), message);
        OrtAssert.RunFails(() => s.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, decay: c.Decay), message);
        using var good = new LinearAttentionSession(c.Options, withPast: false);
        AssertStillWorks(good, c);
    }

    [TestCase("linear", true, false, "update_rule=linear does not use input 'decay'")]
    [TestCase("delta", true, true, "update_rule=delta does not use input 'decay'")]
    [TestCase("linear", false, true, "update_rule=linear does not use input 'beta'")]
    [TestCase("gated", true, true, "update_rule=gated does not use input 'beta'")]
    public void InputTheRuleDoesNotUse(string rule, bool withDecay, bool withBeta, string message)
    {
        // Silently ignoring it (as ORT's contrib op does) would hide a model built for another rule; ONNX rejects it too.
        var c = Good with { UpdateRule = rule };
        using var s = new LinearAttentionSession(c.Options, withPast: false, withDecay: withDecay, withBeta: withBeta);
        OrtAssert.RunFails(() => s.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value,
            decay: new float[c.Batch * c.Seq * c.KvHeads], beta: new float[c.Batch * c.Seq * c.KvHeads]), message);
        using var good = new LinearAttentionSession(c.Options, withPast: false);
        AssertStillWorks(good, c);
    }

    [Test]
    public void UnknownUpdateRuleFailsAtSessionCreation() =>
        AssertCreationFails(Good with { UpdateRule = "mamba" },
            "unknown update_rule 'mamba'; expected one of: linear, gated, delta, gated_delta");

    [TestCase(0f, "decay (the fixed factor gamma) must be in (0, 1], got 0")]
    [TestCase(-0.5f, "must be in (0, 1], got -0.5")]
    [TestCase(1.5f, "must be in (0, 1], got 1.5")]
    [TestCase(float.NaN, "must be in (0, 1], got NaN")]
    public void DecayAttributeOutsideUnitIntervalFailsAtSessionCreation(float gamma, string message) =>
        AssertCreationFails(Good with { Gamma = gamma }, message);

    [Test]
    public void UnknownFeatureMapListsTheNewMaps() =>
        AssertCreationFails(Good with { FeatureMap = "softmax" },
            "unknown feature_map 'softmax'; expected one of: elu_plus_one, relu, identity, squared_relu, l2norm");
}
