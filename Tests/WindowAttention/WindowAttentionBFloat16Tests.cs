using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.WindowAttention;

/// <summary>bfloat16 query/key/value/output with float32 caches: the same op name, chosen by ORT from the input types.</summary>
[TestFixture]
public class WindowAttentionBFloat16Tests
{
    private const TensorProto.Types.DataType BFloat16Type = TensorProto.Types.DataType.Bfloat16;

    public static IEnumerable<WindowAttentionCase> Cases()
    {
        yield return new WindowAttentionCase(2, 65, 4, 2, 64, 64, 16, Sinks: 2);
        yield return new WindowAttentionCase(1, 2, 2, 1, 128, 60, 5);
        yield return new WindowAttentionCase(2, 21, 4, 4, 1, 8, 5, Sinks: 6, Softcap: 0.5f, History: 3);
        yield return new WindowAttentionCase(3, 1, 6, 3, 60, 1, 4, History: 9);
    }

    private static WindowState Start(WindowAttentionCase c) => c.History > 0 ? c.Past : c.ZeroState;

    private static float[] R(float[] x) => ActivationTensors.RoundToBFloat16(x);

    [TestCaseSource(nameof(Cases))]
    public void MatchesReferenceOnBFloat16RoundedInputs(WindowAttentionCase c)
    {
        var past = Start(c);
        using var session = new WindowAttentionSession(c.Options, activation: BFloat16Type);
        var got = session.Run(c, c.Seq, c.Query, c.Key, c.Value, past);

        Assert.That(got.All["output"].Data, Is.TypeOf<BFloat16[]>(), "output element type");
        Assert.That(got.All["present_key_cache"].Data, Is.TypeOf<float[]>(), "cache element type");
        var want = WindowAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv, R(c.Query), R(c.Key), R(c.Value),
            past.Key, past.Value, past.Position);
        TensorAssert.Close(got.Y, want.Output, Tolerance.BFloat16, $"{c}: bfloat16 output");
        TensorAssert.Close(got.Present!.Key, want.KeyCache, Tolerance.Float32, $"{c}: float32 key cache");
        TensorAssert.Close(got.Present.Value, want.ValueCache, Tolerance.Float32, $"{c}: float32 value cache");
        Assert.That(got.Present.Position, Is.EqualTo(want.Position), $"{c}: position");
    }

    [TestCaseSource(nameof(Cases))]
    public void PrefillEqualsTokenByTokenDecode(WindowAttentionCase c)
    {
        using var session = new WindowAttentionSession(c.Options, activation: BFloat16Type);
        var whole = session.Run(c, c.Seq, c.Query, c.Key, c.Value, Start(c));

        var state = Start(c);
        var stepwise = new float[whole.Y.Length];
        int qw = c.QHeads * c.Dk, kw = c.KvHeads * c.Dk, vw = c.KvHeads * c.Dv, yw = c.QHeads * c.Dv;
        for (var t = 0; t < c.Seq; t++)
        {
            var step = session.Run(c, 1, SequenceSlices.Slice(c.Query, c.Batch, c.Seq, qw, t, 1),
                SequenceSlices.Slice(c.Key, c.Batch, c.Seq, kw, t, 1), SequenceSlices.Slice(c.Value, c.Batch, c.Seq, vw, t, 1), state);
            SequenceSlices.Place(step.Y, stepwise, c.Batch, c.Seq, yw, t, 1);
            state = step.Present!;
        }
        // Each output is rounded to bfloat16 on its own, so the two may sit one bfloat16 step apart.
        TensorAssert.Close(stepwise, whole.Y, Tolerance.BFloat16, $"{c}: outputs");
        Assert.That(state.Key, Is.EqualTo(whole.Present!.Key), $"{c}: key cache (copied values, so exactly equal)");
        Assert.That(state.Value, Is.EqualTo(whole.Present.Value), $"{c}: value cache");
        Assert.That(state.Position, Is.EqualTo(whole.Present.Position), $"{c}: position");
    }
}
