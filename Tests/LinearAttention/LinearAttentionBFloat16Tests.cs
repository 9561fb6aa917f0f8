using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.LinearAttention;

/// <summary>
/// bfloat16 query/key/value/decay/beta/output with float32 state: the same op name, chosen by ORT from the input
/// types. Inputs are made with ONNX Runtime's managed <see cref="BFloat16"/>, not with our converter.
/// </summary>
[TestFixture]
public class LinearAttentionBFloat16Tests
{
    private const TensorProto.Types.DataType BFloat16Type = TensorProto.Types.DataType.Bfloat16;

    public static IEnumerable<LinearAttentionCase> Cases()
    {
        yield return new LinearAttentionCase(2, 65, 4, 2, 64, 64, "elu_plus_one");
        yield return new LinearAttentionCase(1, 2, 2, 2, 60, 1, "identity", false);
        yield return new LinearAttentionCase(2, 1, 8, 4, 128, 32, "relu");
        yield return new LinearAttentionCase(1, 63, 8, 2, 60, 16, "squared_relu", false, UpdateRule: "gated", GatePerHead: true, Gamma: 0.95f);
        yield return new LinearAttentionCase(2, 64, 4, 2, 64, 32, "identity", false, UpdateRule: "delta");
        yield return new LinearAttentionCase(3, 7, 6, 3, 1, 60, "l2norm", false, UpdateRule: "gated_delta", GatePerHead: true, SharedBeta: true);
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesReferenceOnBFloat16RoundedInputs(LinearAttentionCase c)
    {
        using var runner = new TypedModelRunner(LinearAttentionSession.BuildModel(c.Options, withPast: true, activation: BFloat16Type));
        var got = Piece(runner, c, 0, c.Seq, c.PastState, c.PastNormalizer);

        Assert.That(got.Output.Data, Is.TypeOf<BFloat16[]>(), "output element type");
        static float[]? R(float[]? x) => x == null ? null : ActivationTensors.RoundToBFloat16(x);
        var want = LinearAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv,
            R(c.Query)!, R(c.Key)!, R(c.Value)!, c.PastState, c.PastNormalizer, R(c.Decay), R(c.Beta));
        TensorAssert.Close(ActivationTensors.Floats(got.Output), want.Output, Tolerance.BFloat16, $"{c}: bfloat16 output");
        // The state never passes through bfloat16, so it keeps the float32 tolerance (a rounded state would miss it).
        TensorAssert.Close(got.State, want.State, Tolerance.Float32, $"{c}: float32 state");
        TensorAssert.Close(got.Normalizer, want.Normalizer, Tolerance.Float32, $"{c}: float32 normaliser");
    }

    [TestCaseSource(nameof(Cases))]
    public void PrefillEqualsTokenByTokenDecode(LinearAttentionCase c)
    {
        using var runner = new TypedModelRunner(LinearAttentionSession.BuildModel(c.Options, withPast: true, activation: BFloat16Type));
        var whole = Piece(runner, c, 0, c.Seq, c.PastState, c.PastNormalizer);
        var wholeY = ActivationTensors.Floats(whole.Output);

        var (state, norm) = (c.PastState, c.PastNormalizer);
        var stepwise = new float[wholeY.Length];
        for (var t = 0; t < c.Seq; t++)
        {
            var step = Piece(runner, c, t, 1, state, norm);
            SequenceSlices.Place(ActivationTensors.Floats(step.Output), stepwise, c.Batch, c.Seq, c.QHeads * c.Dv, t, 1);
            (state, norm) = (step.State, step.Normalizer);
        }
        // Each output is rounded to bfloat16 on its own, so the two may sit one bfloat16 step apart.
        TensorAssert.Close(stepwise, wholeY, Tolerance.BFloat16, $"{c}: outputs");
        TensorAssert.Close(state, whole.State, Tolerance.Float32Reordered, $"{c}: final state");
        TensorAssert.Close(norm, whole.Normalizer, Tolerance.Float32Reordered, $"{c}: final normaliser");
    }

    [Test]
    public void MixedActivationTypesAreRefused()
    {
        // bfloat16 query and value with a float16 key: no variant of the op takes that mix, so the session refuses it.
        var c = new LinearAttentionCase(1, 3, 2, 2, 4, 4);
        var b = new ModelBuilder("mixed");
        b.Input("query", BFloat16Type, 1, 3, 8);
        b.Input("key", TensorProto.Types.DataType.Float16, 1, 3, 8);
        b.Input("value", BFloat16Type, 1, 3, 8);
        var model = b.LinearAttention(c.Options, "query", "key", "value", "", "", "output", "", "")
            .Output("output", BFloat16Type, 1, 3, 8).Build();
        var e = Assert.Throws<OnnxRuntimeException>(() => new TypedModelRunner(model).Dispose());
        Assert.That(e!.Message, Does.Contain("no kernel def matches node inputs").And.Contain("LinearAttention"));
    }

    internal sealed record Result(TypedTensor Output, float[] State, float[] Normalizer);

    /// <summary>Positions [start, start + count) of the case from the given state, with the matching gates and betas.</summary>
    internal static Result Piece(TypedModelRunner runner, LinearAttentionCase c, int start, int count, float[] state, float[] norm)
    {
        TypedTensor Slice(float[] x, int width) => ActivationTensors.Of(
            SequenceSlices.Slice(x, c.Batch, c.Seq, width, start, count), BFloat16Type, [c.Batch, count, width]);
        var inputs = new List<KeyValuePair<string, TypedTensor>>
        {
            new("query", Slice(c.Query, c.QHeads * c.Dk)),
            new("key", Slice(c.Key, c.KvHeads * c.Dk)),
            new("value", Slice(c.Value, c.KvHeads * c.Dv)),
            new("past_state", TypedTensor.Of(state, c.StateShape)),
            new("past_normalizer", TypedTensor.Of(norm, c.NormalizerShape)),
        };
        if (c.Decay is { } decay) inputs.Add(new("decay", Slice(decay, c.DecayWidth)));
        if (c.Beta is { } beta) inputs.Add(new("beta", Slice(beta, c.BetaWidth)));
        var got = runner.Run(inputs, "output", "present_state", "present_normalizer");
        return new Result(got["output"], got["present_state"].Floats, got["present_normalizer"].Floats);
    }
}
