using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Operators.Reference;
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
