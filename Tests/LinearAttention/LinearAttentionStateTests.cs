using NUnit.Framework;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.LinearAttention;

/// <summary>Carrying the state: a prefill equals decode steps, and a split prefill equals one piece.</summary>
[TestFixture]
public class LinearAttentionStateTests
{
    public static IEnumerable<LinearAttentionCase> Cases()
    {
        yield return new LinearAttentionCase(2, 65, 4, 2, 64, 64);
        yield return new LinearAttentionCase(1, 33, 8, 2, 60, 16, "relu");
        yield return new LinearAttentionCase(3, 20, 2, 1, 1, 7, "identity", Normalize: false, Scale: 0.3f);
    }

    [TestCaseSource(nameof(Cases))]
    public void PrefillEqualsTokenByTokenDecode(LinearAttentionCase c)
    {
        using var session = new LinearAttentionSession(c.Options, withPast: true);
        var zerosState = new float[c.Batch * c.KvHeads * c.Dk * c.Dv];
        var zerosNorm = new float[c.Batch * c.KvHeads * c.Dk];
        var whole = session.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, zerosState, zerosNorm, c.StateShape, c.NormalizerShape);

        var state = zerosState;
        var norm = zerosNorm;
        var stepwise = new float[whole.Y.Length];
        int qw = c.QHeads * c.Dk, kw = c.KvHeads * c.Dk, vw = c.KvHeads * c.Dv, yw = c.QHeads * c.Dv;
        for (var t = 0; t < c.Seq; t++)
        {
            var step = session.Run(c.Batch, 1,
                Token(c.Query, c.Batch, c.Seq, qw, t), Token(c.Key, c.Batch, c.Seq, kw, t), Token(c.Value, c.Batch, c.Seq, vw, t),
                state, norm, c.StateShape, c.NormalizerShape);
            for (var b = 0; b < c.Batch; b++)
            {
                Array.Copy(step.Y, b * yw, stepwise, (b * c.Seq + t) * yw, yw);
            }
            state = step.State;
            norm = step.Normalizer;
        }
        TensorAssert.Close(stepwise, whole.Y, Tolerance.Float32Reordered, $"{c}: outputs");
        TensorAssert.Close(state, whole.State, Tolerance.Float32Reordered, $"{c}: final state");
        TensorAssert.Close(norm, whole.Normalizer, Tolerance.Float32Reordered, $"{c}: final normaliser");
    }

    [TestCaseSource(nameof(Cases))]
    public void SplitPrefillEqualsOnePiece(LinearAttentionCase c)
    {
        using var session = new LinearAttentionSession(c.Options, withPast: true);
        var zerosState = new float[c.Batch * c.KvHeads * c.Dk * c.Dv];
        var zerosNorm = new float[c.Batch * c.KvHeads * c.Dk];
        var whole = session.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, zerosState, zerosNorm, c.StateShape, c.NormalizerShape);

        var cut = c.Seq / 3 + 1;
        int qw = c.QHeads * c.Dk, kw = c.KvHeads * c.Dk, vw = c.KvHeads * c.Dv, yw = c.QHeads * c.Dv;
        var first = session.Run(c.Batch, cut, Span(c.Query, c.Batch, c.Seq, qw, 0, cut), Span(c.Key, c.Batch, c.Seq, kw, 0, cut),
            Span(c.Value, c.Batch, c.Seq, vw, 0, cut), zerosState, zerosNorm, c.StateShape, c.NormalizerShape);
        var rest = c.Seq - cut;
        var second = session.Run(c.Batch, rest, Span(c.Query, c.Batch, c.Seq, qw, cut, rest), Span(c.Key, c.Batch, c.Seq, kw, cut, rest),
            Span(c.Value, c.Batch, c.Seq, vw, cut, rest), first.State, first.Normalizer, c.StateShape, c.NormalizerShape);

        var joined = new float[whole.Y.Length];
        for (var b = 0; b < c.Batch; b++)
        {
            Array.Copy(first.Y, b * cut * yw, joined, b * c.Seq * yw, cut * yw);
            Array.Copy(second.Y, b * rest * yw, joined, (b * c.Seq + cut) * yw, rest * yw);
        }
        TensorAssert.Close(joined, whole.Y, Tolerance.Float32Reordered, $"{c}: outputs");
        TensorAssert.Close(second.State, whole.State, Tolerance.Float32Reordered, $"{c}: final state");
        TensorAssert.Close(second.Normalizer, whole.Normalizer, Tolerance.Float32Reordered, $"{c}: final normaliser");
    }

    private static float[] Token(float[] x, int batch, int seq, int width, int t) => Span(x, batch, seq, width, t, 1);

    /// <summary>Positions [start, start+count) of every batch row of a [batch, seq, width] tensor.</summary>
    private static float[] Span(float[] x, int batch, int seq, int width, int start, int count)
    {
        var result = new float[batch * count * width];
        for (var b = 0; b < batch; b++)
        {
            Array.Copy(x, (b * seq + start) * width, result, b * count * width, count * width);
        }
        return result;
    }
}
