using NUnit.Framework;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.LinearAttention;

/// <summary>The update rules (linear, gated, delta, gated_delta), gate and beta layouts and the fixed decay, against the reference.</summary>
[TestFixture]
public class LinearAttentionUpdateRuleTests
{
    /// <summary>(sequence length, head dim) pairs: every awkward length and every awkward head dim at least once.</summary>
    private static readonly (int T, int D)[] Sizes = [(1, 1), (2, 60), (63, 128), (64, 64), (65, 1), (500, 60)];

    /// <summary>Every rule with every gate and beta layout (identity for the delta rules' unit keys, as ORT expects them).</summary>
    private static IEnumerable<LinearAttentionCase> Modes(int t, int d, int seed)
    {
        yield return new LinearAttentionCase(2, t, 4, 2, d, d, Seed: seed, Gamma: 0.97f);
        yield return new LinearAttentionCase(2, t, 4, 2, d, d, Seed: seed, UpdateRule: "gated");
        yield return new LinearAttentionCase(2, t, 4, 2, d, d, Seed: seed, UpdateRule: "gated", GatePerHead: true);
        yield return new LinearAttentionCase(2, t, 4, 2, d, d, "identity", false, Seed: seed, UpdateRule: "delta");
        yield return new LinearAttentionCase(2, t, 4, 2, d, d, "identity", false, Seed: seed, UpdateRule: "delta", SharedBeta: true, Gamma: 0.9f);
        yield return new LinearAttentionCase(2, t, 4, 2, d, d, "identity", false, Seed: seed, UpdateRule: "gated_delta");
        yield return new LinearAttentionCase(2, t, 4, 2, d, d, "l2norm", true, Scale: 0f, Seed: seed, UpdateRule: "gated_delta",
            GatePerHead: true, SharedBeta: true);
    }

    public static IEnumerable<LinearAttentionCase> AwkwardSizes() =>
        Sizes.SelectMany(s => Modes(s.T, s.D, s.T * 131 + s.D));

    /// <summary>Every feature map, normalised or not, under every rule, plus the fixed decay with gates.</summary>
    public static IEnumerable<LinearAttentionCase> Variants()
    {
        foreach (var rule in new[] { "linear", "gated", "delta", "gated_delta" })
            foreach (var map in new[] { "elu_plus_one", "relu", "identity", "squared_relu", "l2norm" })
                foreach (var normalize in new[] { true, false })
                {
                    // elu(x)+1 keys have |phi(k)|^2 near d_k, where the delta rule diverges; only a short sequence is meaningful.
                    var delta = rule.Contains("delta");
                    var seq = delta && map == "elu_plus_one" ? 3 : 37;
                    var dk = delta && map == "elu_plus_one" ? 2 : 16;
                    yield return new LinearAttentionCase(3, seq, 6, 3, dk, 24, map, normalize, Scale: 0.5f, UpdateRule: rule,
                        GatePerHead: normalize, SharedBeta: !normalize);
                }
        yield return new LinearAttentionCase(1, 9, 8, 1, 32, 8, UpdateRule: "gated", Gamma: 0.8f);                      // multi-query
        yield return new LinearAttentionCase(2, 5, 3, 3, 7, 5, "relu", UpdateRule: "gated_delta", Gamma: 0.5f);          // odd dims
        yield return new LinearAttentionCase(1, 1, 2, 2, 1, 1, "identity", UpdateRule: "delta", Gamma: 0.25f);           // smallest decode
        yield return new LinearAttentionCase(2, 17, 4, 4, 60, 1, "l2norm", false, Scale: 0.125f, UpdateRule: "delta");  // v head dim 1
        // Group sizes 3, 5 and 6 (the kernel reads out query heads four at a time), odd key dims, vector-plus-tail value dims.
        yield return new LinearAttentionCase(1, 19, 6, 2, 7, 40, "relu", UpdateRule: "gated_delta");
        yield return new LinearAttentionCase(2, 13, 5, 1, 33, 24, "identity", false, UpdateRule: "delta");
        yield return new LinearAttentionCase(1, 11, 6, 1, 20, 36, "squared_relu", UpdateRule: "gated", Gamma: 0.9f);
    }

    [TestCaseSource(nameof(AwkwardSizes))]
    [TestCaseSource(nameof(Variants))]
    public void MatchesReferenceFromZeroState(LinearAttentionCase c)
    {
        using var session = new LinearAttentionSession(c.Options, withPast: false);
        var got = c.Run(session, withPast: false);
        var want = c.Reference(withPast: false);
        TensorAssert.Close(got.Y, want.Output, Tolerance.Float32, $"{c}: output");
        TensorAssert.Close(got.State, want.State, Tolerance.Float32, $"{c}: present_state");
        TensorAssert.Close(got.Normalizer, want.Normalizer, Tolerance.Float32, $"{c}: present_normalizer");
    }

    [TestCaseSource(nameof(Variants))]
    public void MatchesReferenceFromGivenState(LinearAttentionCase c)
    {
        using var session = new LinearAttentionSession(c.Options, withPast: true);
        var got = c.Run(session, withPast: true);
        var want = c.Reference(withPast: true);
        TensorAssert.Close(got.Y, want.Output, Tolerance.Float32, $"{c}: output");
        TensorAssert.Close(got.State, want.State, Tolerance.Float32, $"{c}: present_state");
        TensorAssert.Close(got.Normalizer, want.Normalizer, Tolerance.Float32, $"{c}: present_normalizer");
    }

    /// <summary>
    /// Two tokens with d_k = d_v = 1 worked out by hand from the rule definitions, checking the reference itself (and the
    /// op) against arithmetic that shares no code with either. Identity map, scale 1 unless said.
    /// </summary>
    [Test]
    public void ScalarRecurrencesWorkedByHand()
    {
        float[] q = [0.5f, -2f], k = [0.8f, 0.6f], v = [3f, -1f], g = [-0.5f, -0.25f], w = [0.5f, 0.75f];
        double a1 = Math.Exp(-0.5), a2 = Math.Exp(-0.25);
        const double gamma = 0.9;

        // linear with gamma: S1 = 0.8*3 = 2.4; S2 = 0.9*2.4 + 0.6*(-1) = 1.56; nu1 = 0.8, nu2 = 0.9*0.8 + 0.6 = 1.32.
        Check("linear", gamma: 0.9f, normalize: true, null, null,
            [0.5 * 2.4 / (0.5 * 0.8 + 1e-6), -2 * 1.56 / (-2 * 1.32 + 1e-6)], 1.56, 1.32);

        // gated: S1 = 2.4; S2 = a2*2.4 - 0.6 (exp(g1) multiplies the zero state first).
        Check("gated", 1f, false, g, null, [0.5 * 2.4, -2 * (a2 * 2.4 - 0.6)], a2 * 2.4 - 0.6, a2 * 0.8 + 0.6);

        // delta: S1 = 0.8*0.5*(3 - 0) = 1.2; r2 = 1.2*0.6 = 0.72; S2 = 1.2 + 0.6*0.75*(-1 - 0.72) = 0.426.
        // nu1 = 0.8*0.5*(1 - 0) = 0.4; nu2 = 0.4 + 0.6*0.75*(1 - 0.4*0.6) = 0.742.
        Check("delta", 1f, false, null, w, [0.5 * 1.2, -2 * 0.426], 0.426, 0.742);

        // gated_delta with gamma: S' = 0.9*a*S before retrieval.
        var s1 = 0.8 * 0.5 * 3;
        var sPrime = gamma * a2 * s1;
        var s2 = sPrime + 0.6 * 0.75 * (-1 - sPrime * 0.6);
        var n1 = 0.8 * 0.5;
        var nPrime = gamma * a2 * n1;
        var n2 = nPrime + 0.6 * 0.75 * (1 - nPrime * 0.6);
        Check("gated_delta", 0.9f, true, g, w, [0.5 * s1 / (0.5 * n1 + 1e-6), -2 * s2 / (-2 * n2 + 1e-6)], s2, n2);

        void Check(string rule, float gamma, bool normalize, float[]? decay, float[]? beta, double[] y, double state, double nu)
        {
            var c = new LinearAttentionCase(1, 2, 1, 1, 1, 1, "identity", normalize, UpdateRule: rule, Gamma: gamma);
            var reference = LinearAttentionReference.Run(c.Attributes, 1, 2, 1, 1, q, k, v, decay: decay, beta: beta);
            Assert.That(reference.Output, Is.EqualTo(y).Within(1e-6), $"{rule}: reference output");
            Assert.That(reference.State[0], Is.EqualTo(state).Within(1e-6), $"{rule}: reference state");
            Assert.That(reference.Normalizer[0], Is.EqualTo(nu).Within(1e-6), $"{rule}: reference normaliser");

            using var session = new LinearAttentionSession(c.Options, withPast: false);
            var got = session.Run(1, 2, q, k, v, decay: decay, beta: beta);
            TensorAssert.Close(got.Y, y, Tolerance.Float32, $"{rule}: output");
            TensorAssert.Close(got.State, [state], Tolerance.Float32, $"{rule}: state");
            TensorAssert.Close(got.Normalizer, [nu], Tolerance.Float32, $"{rule}: normaliser");
        }
    }

    /// <summary>scale = 0 means 1/sqrt(d_k), like ORT's and ONNX's LinearAttention.</summary>
    [TestCase("identity", "gated_delta")]
    [TestCase("elu_plus_one", "linear")]
    [TestCase("l2norm", "delta")]
    public void ZeroScaleMeansInverseSqrtHeadDim(string map, string rule)
    {
        var zero = new LinearAttentionCase(2, 9, 4, 2, 16, 8, map, Scale: 0f, UpdateRule: rule);
        var explicitScale = zero with { Scale = 0.25f };
        using var a = new LinearAttentionSession(zero.Options, withPast: false);
        using var b = new LinearAttentionSession(explicitScale.Options, withPast: false);
        var got = zero.Run(a, withPast: false);
        var want = explicitScale.Run(b, withPast: false);
        TensorAssert.Close(got.Y, want.Y, Tolerance.Float32Reordered, $"{zero}: output");
    }

    /// <summary>A node carrying ORT's tuning hint chunk_size (which neither ORT's CPU kernel nor ours reads) still loads and runs.</summary>
    [Test]
    public void OrtChunkSizeAttributeIsAccepted()
    {
        var c = new LinearAttentionCase(1, 6, 2, 1, 8, 4, "identity", false, UpdateRule: "gated_delta");
        var model = LinearAttentionSession.BuildModel(c.Options, withPast: false);
        model.Graph.Node[0].Attribute.Add(OnnxAttention.Graphs.Building.Attr.Int("chunk_size", 64));
        using var runner = new TypedModelRunner(model);
        var got = runner.Run(
        [
            new("query", TypedTensor.Of(c.Query, 1, 6, 16)),
            new("key", TypedTensor.Of(c.Key, 1, 6, 8)),
            new("value", TypedTensor.Of(c.Value, 1, 6, 4)),
            new("decay", TypedTensor.Of(c.Decay!, c.DecayShape)),
            new("beta", TypedTensor.Of(c.Beta!, c.BetaShape)),
        ], "output");
        TensorAssert.Close(got["output"].Floats, c.Reference(withPast: false).Output, Tolerance.Float32, "with chunk_size");
    }

    /// <summary>The fixed decay is not a no-op: gamma = 0.5 scales the zero-state linear rule's output history as sum 0.5^(t-i).</summary>
    [Test]
    public void FixedDecayWeighsOlderTokensGeometrically()
    {
        // d_k = d_v = 1, identity, unnormalised: y_t = q_t * sum_i 0.5^(t-i) k_i v_i, computed here without the reference.
        float[] q = [1f, 2f, -1f, 0.5f], k = [1f, -0.5f, 2f, 1f], v = [2f, 4f, -1f, 3f];
        var c = new LinearAttentionCase(1, 4, 1, 1, 1, 1, "identity", false, Gamma: 0.5f);
        using var session = new LinearAttentionSession(c.Options, withPast: false);
        var got = session.Run(1, 4, q, k, v);
        var want = new double[4];
        var state = 0.0;
        for (var t = 0; t < 4; t++)
        {
            state = 0.5 * state + k[t] * v[t];
            want[t] = q[t] * state;
        }
        TensorAssert.Close(got.Y, want, Tolerance.Float32, "gamma 0.5");
        TensorAssert.Close(got.State, [state], Tolerance.Float32, "gamma 0.5 state");
    }
}
