using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.LinearAttention;

/// <summary>float16 query/key/value/output with float32 state: the same op name, chosen by ORT from the input types.</summary>
[TestFixture]
public class LinearAttentionFloat16Tests
{
    private static Float16[] ToHalf(float[] x) => x.Select(v => (Float16)v).ToArray();

    private static float[] RoundTrip(float[] x) => x.Select(v => (float)(Float16)v).ToArray();

    [TestCase(2, 65, 4, 2, 64, 64, "elu_plus_one", true)]
    [TestCase(1, 7, 2, 2, 60, 1, "identity", false)]
    [TestCase(2, 1, 8, 4, 128, 32, "relu", true)]
    public void MatchesReferenceOnHalfRoundedInputs(int batch, int seq, int qHeads, int kvHeads, int dk, int dv, string map, bool normalize)
    {
        var c = new LinearAttentionCase(batch, seq, qHeads, kvHeads, dk, dv, map, normalize);
        var model = LinearAttentionSession.BuildModel(c.Options, withPast: true, activation: TensorProto.Types.DataType.Float16);
        using var session = SessionFactory.Create(model, intraOpThreads: 1);
        var past = c.PastState;
        var pastNorm = c.PastNormalizer;
        using var values = new DisposableList<OrtValue>
        {
            OrtValue.CreateTensorValueFromMemory(ToHalf(c.Query), [batch, seq, qHeads * dk]),
            OrtValue.CreateTensorValueFromMemory(ToHalf(c.Key), [batch, seq, kvHeads * dk]),
            OrtValue.CreateTensorValueFromMemory(ToHalf(c.Value), [batch, seq, kvHeads * dv]),
            OrtValue.CreateTensorValueFromMemory(past, c.StateShape),
            OrtValue.CreateTensorValueFromMemory(pastNorm, c.NormalizerShape),
        };
        using var runOptions = new RunOptions();
        using var results = session.Session.Run(runOptions, ["query", "key", "value", "past_state", "past_normalizer"], values,
            ["output", "present_state", "present_normalizer"]);

        Assert.That(results[0].GetTensorTypeAndShape().ElementDataType, Is.EqualTo(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16));
        Assert.That(results[1].GetTensorTypeAndShape().ElementDataType, Is.EqualTo(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float));
        var want = LinearAttentionReference.Run(c.Attributes, batch, seq, dk, dv,
            RoundTrip(c.Query), RoundTrip(c.Key), RoundTrip(c.Value), past, pastNorm);
        var y = results[0].GetTensorDataAsSpan<Float16>().ToArray().Select(h => (float)h).ToArray();
        TensorAssert.Close(y, want.Output, Tolerance.Float16, $"{c}: float16 output");
        // The state never passes through half precision, so it keeps the float32 tolerance.
        TensorAssert.Close(results[1].GetTensorDataAsSpan<float>(), want.State, Tolerance.Float32, $"{c}: float32 state");
        TensorAssert.Close(results[2].GetTensorDataAsSpan<float>(), want.Normalizer, Tolerance.Float32, $"{c}: float32 normaliser");
    }

    public static IEnumerable<LinearAttentionCase> RuleCases()
    {
        yield return new LinearAttentionCase(2, 65, 4, 2, 64, 64, "elu_plus_one", Gamma: 0.9f);
        yield return new LinearAttentionCase(2, 65, 4, 2, 64, 64, "relu", UpdateRule: "gated");
        yield return new LinearAttentionCase(1, 63, 8, 2, 60, 16, "squared_relu", false, UpdateRule: "gated", GatePerHead: true, Gamma: 0.95f);
        yield return new LinearAttentionCase(2, 64, 4, 2, 64, 32, "identity", false, UpdateRule: "delta");
        yield return new LinearAttentionCase(1, 2, 2, 2, 128, 1, "l2norm", true, UpdateRule: "delta", SharedBeta: true);
        yield return new LinearAttentionCase(2, 65, 4, 2, 64, 64, "identity", false, Scale: 0f, UpdateRule: "gated_delta");
        yield return new LinearAttentionCase(3, 1, 6, 3, 1, 60, "l2norm", false, UpdateRule: "gated_delta", GatePerHead: true, SharedBeta: true);
    }

    /// <summary>Every update rule with float16 query/key/value/decay/beta/output and float32 state.</summary>
    [TestCaseSource(nameof(RuleCases))]
    public void EveryRuleMatchesReferenceOnHalfRoundedInputs(LinearAttentionCase c)
    {
        var model = LinearAttentionSession.BuildModel(c.Options, withPast: true, activation: TensorProto.Types.DataType.Float16);
        using var runner = new TypedModelRunner(model);
        var inputs = new List<KeyValuePair<string, TypedTensor>>
        {
            new("query", TypedTensor.Of(ToHalf(c.Query), c.Batch, c.Seq, c.QHeads * c.Dk)),
            new("key", TypedTensor.Of(ToHalf(c.Key), c.Batch, c.Seq, c.KvHeads * c.Dk)),
            new("value", TypedTensor.Of(ToHalf(c.Value), c.Batch, c.Seq, c.KvHeads * c.Dv)),
            new("past_state", TypedTensor.Of(c.PastState, c.StateShape)),
            new("past_normalizer", TypedTensor.Of(c.PastNormalizer, c.NormalizerShape)),
        };
        var decay = c.Decay;
        var beta = c.Beta;
        if (decay != null) inputs.Add(new("decay", TypedTensor.Of(ToHalf(decay), c.DecayShape)));
        if (beta != null) inputs.Add(new("beta", TypedTensor.Of(ToHalf(beta), c.BetaShape)));
        var got = runner.Run(inputs, "output", "present_state", "present_normalizer");

        var want = LinearAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv,
            RoundTrip(c.Query), RoundTrip(c.Key), RoundTrip(c.Value), c.PastState, c.PastNormalizer,
            decay == null ? null : RoundTrip(decay), beta == null ? null : RoundTrip(beta));
        var y = ((Float16[])got["output"].Data).Select(h => (float)h).ToArray();
        TensorAssert.Close(y, want.Output, Tolerance.Float16, $"{c}: float16 output");
        TensorAssert.Close(got["present_state"].Floats, want.State, Tolerance.Float32, $"{c}: float32 state");
        TensorAssert.Close(got["present_normalizer"].Floats, want.Normalizer, Tolerance.Float32, $"{c}: float32 normaliser");
    }

    [Test]
    public void MixedActivationTypesAreRejected()
    {
        var c = new LinearAttentionCase(1, 3, 2, 2, 4, 4);
        var model = LinearAttentionSession.BuildModel(c.Options, withPast: false, declareShapes: false, activation: TensorProto.Types.DataType.Float16);
        // Declared float16 inputs but a float32 key at run time: ORT's own type check or ours must refuse it.
        using var session = SessionFactory.Create(model, intraOpThreads: 1);
        using var values = new DisposableList<OrtValue>
        {
            OrtValue.CreateTensorValueFromMemory(ToHalf(c.Query), [1, 3, 8]),
            OrtValue.CreateTensorValueFromMemory(c.Key, [1, 3, 8]),
            OrtValue.CreateTensorValueFromMemory(ToHalf(c.Value), [1, 3, 8]),
        };
        using var runOptions = new RunOptions();
        Assert.Throws<OnnxRuntimeException>(() => session.Session.Run(runOptions, ["query", "key", "value"], values, ["output"]).Dispose());
    }
}
