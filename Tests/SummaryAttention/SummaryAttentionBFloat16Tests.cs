using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SummaryAttention;

/// <summary>bfloat16 query/key/value/output with float32 summaries: the same op name, chosen by ORT from the input types.</summary>
[TestFixture]
public class SummaryAttentionBFloat16Tests
{
    private const TensorProto.Types.DataType BFloat16Type = TensorProto.Types.DataType.Bfloat16;

    public static IEnumerable<SummaryAttentionCase> Cases()
    {
        yield return new SummaryAttentionCase(2, 65, 4, 2, 64, 64);
        yield return new SummaryAttentionCase(1, 2, 2, 1, 128, 60, "ema", Alpha: 0.8f, NumSlots: 2);
        yield return new SummaryAttentionCase(2, 21, 4, 4, 1, 8, "moving", Window: 5, History: 3);
        yield return new SummaryAttentionCase(3, 1, 6, 3, 60, 1, "ema", Alpha: 0.95f, History: 9);
    }

    private static SummaryState Start(SummaryAttentionCase c) => c.History > 0 ? c.Past : c.ZeroState;

    private static float[] R(float[] x) => ActivationTensors.RoundToBFloat16(x);

    [TestCaseSource(nameof(Cases))]
    public void MatchesReferenceOnBFloat16RoundedInputs(SummaryAttentionCase c)
    {
        var past = Start(c);
        using var session = new SummaryAttentionSession(c.Options, c.PastInputs, activation: BFloat16Type);
        var got = session.Run(c, c.Seq, c.Query, c.Key, c.Value, past);

        Assert.That(got.All["output"].Data, Is.TypeOf<BFloat16[]>(), "output element type");
        Assert.That(got.All["present_key_summary"].Data, Is.TypeOf<float[]>(), "summary element type");
        var want = SummaryAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv, R(c.Query), R(c.Key), R(c.Value),
            past.KeySummary, past.ValueSummary, past.Count, past.KeyWindow, past.ValueWindow);
        TensorAssert.Close(got.Y, want.Output, Tolerance.BFloat16, $"{c}: bfloat16 output");
        // Summaries are float32 sums of bfloat16 inputs: rounding them to bfloat16 would miss this tolerance.
        TensorAssert.Close(got.Present!.KeySummary, want.KeySummary, Tolerance.Float32, $"{c}: float32 key summary");
        TensorAssert.Close(got.Present.ValueSummary, want.ValueSummary, Tolerance.Float32, $"{c}: float32 value summary");
        TensorAssert.Close(got.Present.KeyWindow, want.KeyWindow, Tolerance.Float32, $"{c}: key window");
        Assert.That(got.Present.Count, Is.EqualTo(want.Count), $"{c}: count");
    }

    [TestCaseSource(nameof(Cases))]
    public void PrefillEqualsTokenByTokenDecode(SummaryAttentionCase c)
    {
        using var session = new SummaryAttentionSession(c.Options, c.PastInputs, activation: BFloat16Type);
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
        TensorAssert.Close(state.KeySummary, whole.Present!.KeySummary, Tolerance.Float32Reordered, $"{c}: key summary");
        TensorAssert.Close(state.ValueSummary, whole.Present.ValueSummary, Tolerance.Float32Reordered, $"{c}: value summary");
        Assert.That(state.Count, Is.EqualTo(whole.Present.Count), $"{c}: count");
        Assert.That(state.KeyWindow, Is.EqualTo(whole.Present.KeyWindow), $"{c}: key window (copied values, so exactly equal)");
        Assert.That(state.ValueWindow, Is.EqualTo(whole.Present.ValueWindow), $"{c}: value window");
    }
}
