using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.SegmentAttention;

/// <summary>The sizes of one SegmentAttention call and whether it continues from a given state, all checked.</summary>
public readonly record struct SegmentAttentionShapes(QkvShapes Qkv, bool HasPast)
{
    /// <param name="valuesOnHost">False on the CUDA execution provider: past_position is device memory there, so its values are
    /// not read (only its shape and type are checked).</param>
    internal static unsafe SegmentAttentionShapes From(in KernelContext context, SegmentAttentionAttributes a, bool valuesOnHost = true)
    {
        var qkv = QkvShapes.From(context, a.Heads, SegmentAttentionOperator.InputQuery, SegmentAttentionOperator.InputKey,
            SegmentAttentionOperator.InputValue);
        long b = qkv.Batch, h = a.Heads.KvHeads, l = a.SegmentLength, dk = qkv.KeyDim, dv = qkv.ValueDim;
        QkvShapes.RequireSize(b * h * l * Math.Max(dk, dv), "the segment cache");

        var c = SegmentAttentionContract.Contract;
        var hasPast = StateChecks.AllOrNone(context, "SegmentAttention's past state", PastGroup);
        if (hasPast)
        {
            c.RequirePast(context, SegmentAttentionContract.MemoryKey, a, b, dk, dv);
            c.RequirePast(context, SegmentAttentionContract.MemoryValue, a, b, dk, dv);
            c.RequirePast(context, SegmentAttentionContract.SegmentKey, a, b, dk, dv);
            c.RequirePast(context, SegmentAttentionContract.SegmentValue, a, b, dk, dv);
            var position = context.Input(SegmentAttentionOperator.InputPastPosition);
            StateChecks.RequireShape(position, "past_position", OrtElementType.Int64, [b], "[batch]");
            var values = valuesOnHost ? new ReadOnlySpan<long>(position.Data, (int)b) : [];
            if (valuesOnHost)
            {
                StateChecks.RequireNonNegative(position, "past_position");
            }
            for (var i = 0; i < values.Length; i++)
            {
                if (values[i] > long.MaxValue - qkv.SequenceLength)
                {
                    throw OrtException.InvalidArgument(
                        $"past_position[{i}] is {values[i]}; adding the sequence length {qkv.SequenceLength} overflows int64");
                }
            }
        }
        return new SegmentAttentionShapes(qkv, hasPast);
    }

    private static readonly (int, string)[] PastGroup = SegmentAttentionContract.Contract.PastGroup();
}
