using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Tests.Support;

/// <summary>
/// The bfloat16 checks every cache operator shares (bfloat16 query/key/value/output, float32 states, the kernel chosen
/// by ORT from the input types): the output matches the reference run on bfloat16-rounded inputs, and prefill equals
/// token-by-token decode. A fixture derives from it, lists its cases, and says how to open a bfloat16 session, run it,
/// check its states against the reference and compare two states.
/// </summary>
public abstract class BFloat16AttentionChecks<TCase, TState, TSession>
    where TCase : IAttentionCase<TState>
    where TState : class
    where TSession : IDisposable
{
    protected const TensorProto.Types.DataType BFloat16Type = TensorProto.Types.DataType.Bfloat16;

    /// <summary>A session whose activations are bfloat16 (<see cref="BFloat16Type"/>).</summary>
    protected abstract TSession Open(TCase c);

    protected abstract IStateOutputs<TState> Run(TSession session, TCase c, int seq, float[] q, float[] k, float[] v, TState state);

    /// <summary>
    /// Runs the reference from <paramref name="past"/> on the given (bfloat16-rounded) inputs, asserts the present
    /// state of <paramref name="got"/> against it, and gives the reference output (double precision).
    /// </summary>
    protected abstract double[] CheckStatesAgainstReference(TCase c, TState past, float[] q, float[] k, float[] v, IStateOutputs<TState> got);

    /// <summary>Asserts that the state carried token by token equals the one prefill gave.</summary>
    protected abstract void CheckStatesAgree(TCase c, TState stepwise, TState whole);

    private static TState Start(TCase c) => c.History > 0 ? c.Past : c.ZeroState;

    private static float[] R(float[] x) => ActivationTensors.RoundToBFloat16(x);

    protected void CheckMatchesReferenceOnBFloat16RoundedInputs(TCase c)
    {
        var past = Start(c);
        using var session = Open(c);
        var got = Run(session, c, c.Seq, c.Query, c.Key, c.Value, past);

        Assert.That(got.All["output"].Data, Is.TypeOf<BFloat16[]>(), "output element type");
        var want = CheckStatesAgainstReference(c, past, R(c.Query), R(c.Key), R(c.Value), got);
        TensorAssert.Close(got.Y, want, Tolerance.BFloat16, $"{c}: bfloat16 output");
    }

    protected void CheckPrefillEqualsTokenByTokenDecode(TCase c)
    {
        using var session = Open(c);
        var whole = Run(session, c, c.Seq, c.Query, c.Key, c.Value, Start(c));

        var state = Start(c);
        var stepwise = new float[whole.Y.Length];
        int qw = c.QHeads * c.Dk, kw = c.KvHeads * c.Dk, vw = c.KvHeads * c.Dv, yw = c.QHeads * c.Dv;
        for (var t = 0; t < c.Seq; t++)
        {
            var step = Run(session, c, 1, SequenceSlices.Slice(c.Query, c.Batch, c.Seq, qw, t, 1),
                SequenceSlices.Slice(c.Key, c.Batch, c.Seq, kw, t, 1), SequenceSlices.Slice(c.Value, c.Batch, c.Seq, vw, t, 1), state);
            SequenceSlices.Place(step.Y, stepwise, c.Batch, c.Seq, yw, t, 1);
            state = step.Present!;
        }
        // Each output is rounded to bfloat16 on its own, so the two may sit one bfloat16 step apart.
        TensorAssert.Close(stepwise, whole.Y, Tolerance.BFloat16, $"{c}: outputs");
        CheckStatesAgree(c, state, whole.Present!);
    }
}
