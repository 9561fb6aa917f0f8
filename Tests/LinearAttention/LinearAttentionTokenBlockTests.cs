using NUnit.Framework;
using OnnxAttention.KernelForms;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.LinearAttention;

/// <summary>
/// The token-block prefill (four tokens per pass over the state) against the reference and against the per-token
/// pass, over the sizes where its strips, tails and head counts change: value dims around the 16- and 32-wide
/// strips, 1 to 5 query heads per KV head (5 falls back to per token), sequence lengths with 0 to 3 tokens left over.
/// </summary>
[TestFixture]
[NonParallelizable] // its sessions share the fixture's KernelFormSwitch
public unsafe class LinearAttentionTokenBlockTests
{
    private readonly KernelFormSwitch _forms = new();

    public static IEnumerable<LinearAttentionCase> Cases()
    {
        var seed = 0;
        foreach (var (t, dk, dv) in new[] { (4, 64, 64), (5, 3, 17), (7, 64, 100), (9, 1, 1), (66, 60, 33), (67, 128, 128), (10, 16, 48) })
            foreach (var (qHeads, kvHeads) in new[] { (2, 2), (4, 2), (6, 2), (8, 2), (5, 1) })
            {
                seed++;
                yield return new LinearAttentionCase(2, t, qHeads, kvHeads, dk, dv, Seed: seed);
                yield return new LinearAttentionCase(1, t, qHeads, kvHeads, dk, dv, "identity", Normalize: false, Scale: 0.5f, Seed: seed);
            }
        // Every way the state decays: fixed gamma, gate per key row, gate per head (with gamma), none.
        yield return new LinearAttentionCase(2, 39, 4, 2, 32, 40, Gamma: 0.9f);
        yield return new LinearAttentionCase(2, 39, 4, 2, 32, 40, "relu", UpdateRule: "gated");
        yield return new LinearAttentionCase(1, 42, 3, 3, 64, 64, "identity", false, UpdateRule: "gated", Gamma: 0.95f);
        yield return new LinearAttentionCase(2, 41, 8, 2, 20, 72, "squared_relu", UpdateRule: "gated", GatePerHead: true);
        yield return new LinearAttentionCase(1, 43, 4, 1, 64, 64, "elu_plus_one", UpdateRule: "gated", GatePerHead: true, Gamma: 0.97f);
    }

    [TestCaseSource(nameof(Cases))]
    public void BlocksMatchTheReferenceAndThePerTokenPass(LinearAttentionCase c)
    {
        using var session = new LinearAttentionSession(c.Options, withPast: true, forms: _forms);
        var blocks = Run(session, c, LinearForm.TokenBlocks);
        var perToken = Run(session, c, LinearForm.PerToken);
        var want = c.Reference(withPast: true);
        TensorAssert.Close(blocks.Y, want.Output, Tolerance.Float32, $"{c}: output");
        TensorAssert.Close(blocks.State, want.State, Tolerance.Float32, $"{c}: present_state");
        TensorAssert.Close(blocks.Normalizer, want.Normalizer, Tolerance.Float32, $"{c}: present_normalizer");
        TensorAssert.Close(blocks.Y, perToken.Y, Tolerance.Float32Reordered, $"{c}: output vs per token");
        // The state takes the same fused operations in the same order either way.
        Assert.That(blocks.State, Is.EqualTo(perToken.State), $"{c}: present_state vs per token");
        Assert.That(blocks.Normalizer, Is.EqualTo(perToken.Normalizer), $"{c}: present_normalizer vs per token");
    }

    [Test]
    public void OnePassEqualsFourSingleTokenPasses([Values(1, 2, 3, 4)] int heads, [Values(false, true)] bool gated,
        [Values(1, 15, 16, 33, 64, 70)] int dv)
    {
        const int n = LinearAttentionTokenBlock.Tokens;
        const int dk = 9;
        var seed = heads * 100 + dv + (gated ? 7 : 0);
        var s0 = Seeded.Uniform(seed, dk * dv);
        var k = Seeded.Uniform(seed + 1, n * dk);
        var q = Seeded.Uniform(seed + 2, n * heads * dk);
        var f = Seeded.Uniform(seed + 3, n * dk, 0.5f, 1f);
        // Values and outputs with a row stride wider than one head, as in [batch, seq, heads * dim].
        var vStride = dv + 3;
        var yStride = heads * dv + 5;
        var v = Seeded.Uniform(seed + 4, n * vStride);

        var blockState = (float[])s0.Clone();
        var blockY = new float[n * yStride];
        var kT = new float[dk * n];
        var fT = new float[dk * n];
        var qT = new float[dk * n * heads];
        for (var t = 0; t < n; t++)
            for (var r = 0; r < dk; r++)
            {
                kT[r * n + t] = k[t * dk + r];
                fT[r * n + t] = f[t * dk + r];
                for (var h = 0; h < heads; h++) qT[(r * n + t) * heads + h] = q[(t * heads + h) * dk + r];
            }
        fixed (float* ps = blockState, py = blockY, pk = kT, pf = fT, pq = qT, pv = v)
        {
            LinearAttentionTokenBlock.WriteAndReadOut(ps, dk, dv, gated ? pf : null, pk, pv, vStride, pq, heads, py, yStride);
        }

        var stepState = (float[])s0.Clone();
        var stepY = new float[n * yStride];
        fixed (float* ps = stepState, py = stepY, pk = k, pf = f, pq = q, pv = v)
        {
            for (var t = 0; t < n; t++)
            {
                LinearAttentionSweeps.WriteAndReadOut(ps, dk, dv, gated ? pf + t * dk : null, pk + t * dk, pv + t * vStride,
                    pq + t * heads * dk, heads, py + t * yStride);
            }
        }
        Assert.That(blockState, Is.EqualTo(stepState), "state");
        TensorAssert.Close(blockY, stepY.Select(x => (double)x).ToArray(), Tolerance.Float32Reordered, "outputs");
        // The gaps between heads' outputs are never written.
        for (var t = 0; t < n; t++)
            for (var i = heads * dv; i < yStride; i++)
                Assert.That(blockY[t * yStride + i], Is.Zero, $"token {t}, padding {i}");
    }

    private LinearAttentionSession.Outputs Run(LinearAttentionSession session, LinearAttentionCase c, LinearForm form)
    {
        _forms.Linear = form;
        try
        {
            return session.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, c.PastState, c.PastNormalizer, c.StateShape, c.NormalizerShape,
                decay: c.Decay, beta: c.Beta);
        }
        finally
        {
            _forms.Reset();
        }
    }
}
