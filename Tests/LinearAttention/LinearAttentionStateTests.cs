using NUnit.Framework;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.LinearAttention;

/// <summary>Carrying the state: a prefill equals decode steps, and a split prefill equals one piece, for every update rule.</summary>
[TestFixture]
public class LinearAttentionStateTests
{
    public static IEnumerable<LinearAttentionCase> Cases()
    {
        yield return new LinearAttentionCase(2, 65, 4, 2, 64, 64);
        yield return new LinearAttentionCase(1, 33, 8, 2, 60, 16, "relu");
        yield return new LinearAttentionCase(3, 20, 2, 1, 1, 7, "identity", Normalize: false, Scale: 0.3f);
    }

    /// <summary>Every rule and gate/beta layout, with the fixed decay and the normaliser in some of them.</summary>
    public static IEnumerable<LinearAttentionCase> RuleCases()
    {
        yield return new LinearAttentionCase(2, 40, 4, 2, 16, 12, Gamma: 0.95f);
        yield return new LinearAttentionCase(2, 40, 4, 2, 16, 12, UpdateRule: "gated");
        yield return new LinearAttentionCase(1, 33, 6, 3, 60, 8, "squared_relu", UpdateRule: "gated", GatePerHead: true, Gamma: 0.9f);
        yield return new LinearAttentionCase(2, 40, 4, 2, 16, 12, "identity", Normalize: false, UpdateRule: "delta");
        yield return new LinearAttentionCase(1, 33, 4, 1, 60, 8, "l2norm", UpdateRule: "delta", SharedBeta: true, Gamma: 0.97f);
        yield return new LinearAttentionCase(2, 40, 4, 2, 16, 12, "l2norm", Normalize: false, Scale: 0f, UpdateRule: "gated_delta");
        yield return new LinearAttentionCase(3, 21, 2, 2, 1, 5, "relu", UpdateRule: "gated_delta", GatePerHead: true, SharedBeta: true);
    }

    [TestCaseSource(nameof(Cases))]
    [TestCaseSource(nameof(RuleCases))]
    public void PrefillEqualsTokenByTokenDecode(LinearAttentionCase c)
    {
        using var session = new LinearAttentionSession(c.Options, withPast: true);
        var zerosState = new float[c.Batch * c.KvHeads * c.Dk * c.Dv];
        var zerosNorm = new float[c.Batch * c.KvHeads * c.Dk];
        var whole = Piece(session, c, 0, c.Seq, zerosState, zerosNorm);

        var state = zerosState;
        var norm = zerosNorm;
        var stepwise = new float[whole.Y.Length];
        var yw = c.QHeads * c.Dv;
        for (var t = 0; t < c.Seq; t++)
        {
            var step = Piece(session, c, t, 1, state, norm);
            SequenceSlices.Place(step.Y, stepwise, c.Batch, c.Seq, yw, t, 1);
            state = step.State;
            norm = step.Normalizer;
        }
        TensorAssert.Close(stepwise, whole.Y, Tolerance.Float32Reordered, $"{c}: outputs");
        TensorAssert.Close(state, whole.State, Tolerance.Float32Reordered, $"{c}: final state");
        TensorAssert.Close(norm, whole.Normalizer, Tolerance.Float32Reordered, $"{c}: final normaliser");
    }

    [TestCaseSource(nameof(Cases))]
    [TestCaseSource(nameof(RuleCases))]
    public void SplitPrefillEqualsOnePiece(LinearAttentionCase c)
    {
        using var session = new LinearAttentionSession(c.Options, withPast: true);
        var zerosState = new float[c.Batch * c.KvHeads * c.Dk * c.Dv];
        var zerosNorm = new float[c.Batch * c.KvHeads * c.Dk];
        var whole = Piece(session, c, 0, c.Seq, zerosState, zerosNorm);

        var cut = c.Seq / 3 + 1;
        var rest = c.Seq - cut;
        var yw = c.QHeads * c.Dv;
        var first = Piece(session, c, 0, cut, zerosState, zerosNorm);
        var second = Piece(session, c, cut, rest, first.State, first.Normalizer);

        var joined = new float[whole.Y.Length];
        SequenceSlices.Place(first.Y, joined, c.Batch, c.Seq, yw, 0, cut);
        SequenceSlices.Place(second.Y, joined, c.Batch, c.Seq, yw, cut, rest);
        TensorAssert.Close(joined, whole.Y, Tolerance.Float32Reordered, $"{c}: outputs");
        TensorAssert.Close(second.State, whole.State, Tolerance.Float32Reordered, $"{c}: final state");
        TensorAssert.Close(second.Normalizer, whole.Normalizer, Tolerance.Float32Reordered, $"{c}: final normaliser");
    }

    /// <summary>Runs positions [start, start + count) of the case from the given state, with the matching gates and betas.</summary>
    private static LinearAttentionSession.Outputs Piece(LinearAttentionSession session, LinearAttentionCase c, int start, int count,
        float[] state, float[] norm)
    {
        float[] Cut(float[] x, int width) => SequenceSlices.Slice(x, c.Batch, c.Seq, width, start, count);
        var decay = c.Decay;
        var beta = c.Beta;
        return session.Run(c.Batch, count,
            Cut(c.Query, c.QHeads * c.Dk), Cut(c.Key, c.KvHeads * c.Dk), Cut(c.Value, c.KvHeads * c.Dv),
            state, norm, c.StateShape, c.NormalizerShape,
            decay: decay == null ? null : Cut(decay, c.DecayWidth), decayShape: [c.Batch, count, c.DecayWidth],
            beta: beta == null ? null : Cut(beta, c.BetaWidth), betaShape: [c.Batch, count, c.BetaWidth]);
    }
}
