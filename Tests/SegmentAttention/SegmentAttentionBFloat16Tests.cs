using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SegmentAttention;

/// <summary>bfloat16 query/key/value/output with float32 memory and segment state, chosen by ORT from the input types.</summary>
[TestFixture]
public class SegmentAttentionBFloat16Tests
{
    private const TensorProto.Types.DataType BFloat16Type = TensorProto.Types.DataType.Bfloat16;

    public static IEnumerable<SegmentAttentionCase> Cases()
    {
        yield return new SegmentAttentionCase(2, 65, 4, 2, 64, 64, 16);
        yield return new SegmentAttentionCase(1, 2, 2, 1, 128, 60, 5);
        yield return new SegmentAttentionCase(2, 21, 4, 4, 1, 8, 5, History: 3);
        yield return new SegmentAttentionCase(3, 1, 6, 3, 60, 1, 4, History: 9);
    }

    private static SegmentState Start(SegmentAttentionCase c) => c.History > 0 ? c.Past : c.ZeroState;

    private static float[] R(float[] x) => ActivationTensors.RoundToBFloat16(x);

    [TestCaseSource(nameof(Cases))]
    public void MatchesReferenceOnBFloat16RoundedInputs(SegmentAttentionCase c)
    {
        var past = Start(c);
        using var session = new SegmentAttentionSession(c.Options, activation: BFloat16Type);
        var got = session.Run(c, c.Seq, c.Query, c.Key, c.Value, past);

        Assert.That(got.All["output"].Data, Is.TypeOf<BFloat16[]>(), "output element type");
        var want = SegmentAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv, R(c.Query), R(c.Key), R(c.Value),
            past.MemoryKey, past.MemoryValue, past.SegmentKey, past.SegmentValue, past.Position);
        TensorAssert.Close(got.Y, want.Output, Tolerance.BFloat16, $"{c}: bfloat16 output");
        // The memory is a float32 average of bfloat16 inputs: rounding it would miss this tolerance.
        TensorAssert.Close(got.Present!.MemoryKey, want.MemoryKey, Tolerance.Float32, $"{c}: float32 memory key");
        TensorAssert.Close(got.Present.MemoryValue, want.MemoryValue, Tolerance.Float32, $"{c}: float32 memory value");
        TensorAssert.Close(got.Present.SegmentKey, want.SegmentKey, Tolerance.Float32, $"{c}: segment key");
        Assert.That(got.Present.Position, Is.EqualTo(want.Position), $"{c}: position");
    }

    [TestCaseSource(nameof(Cases))]
    public void PrefillEqualsTokenByTokenDecode(SegmentAttentionCase c)
    {
        using var session = new SegmentAttentionSession(c.Options, activation: BFloat16Type);
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
        TensorAssert.Close(state.MemoryKey, whole.Present!.MemoryKey, Tolerance.Float32Reordered, $"{c}: memory key");
        TensorAssert.Close(state.MemoryValue, whole.Present.MemoryValue, Tolerance.Float32Reordered, $"{c}: memory value");
        Assert.That(state.SegmentKey, Is.EqualTo(whole.Present.SegmentKey), $"{c}: segment key (copied values, so exactly equal)");
        Assert.That(state.SegmentValue, Is.EqualTo(whole.Present.SegmentValue), $"{c}: segment value");
        Assert.That(state.Position, Is.EqualTo(whole.Present.Position), $"{c}: position");
    }
}
