using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.HybridAttention;

/// <summary>The sizes of one HybridAttention call and whether it continues from a given state, all checked.</summary>
public readonly record struct HybridAttentionShapes(QkvShapes Qkv, int CompressedValueRows, bool HasPast)
{
    /// <param name="valuesOnHost">False on the CUDA execution provider: past_position is device memory there, so its values are
    /// not read (only its shape and type are checked).</param>
    internal static HybridAttentionShapes From(in KernelContext context, HybridAttentionAttributes a, bool valuesOnHost = true)
    {
        var qkv = QkvShapes.From(context, a.Heads, HybridAttentionOperator.InputQuery, HybridAttentionOperator.InputKey,
            HybridAttentionOperator.InputValue);
        long b = qkv.Batch, h = a.Heads.KvHeads, w = a.Window, dk = qkv.KeyDim, dv = qkv.ValueDim;
        long rows = a.CompressedValueRows(qkv.KeyDim);
        QkvShapes.RequireSize(b * h * w * Math.Max(dk, dv), "the KV cache");
        QkvShapes.RequireSize(b * h * rows * dv, "the compressed value state");

        var c = HybridAttentionContract.Contract;
        var hasPast = StateChecks.AllOrNone(context, "HybridAttention's past state", PastGroup);
        if (hasPast)
        {
            c.RequirePast(context, HybridAttentionContract.Key, a, b, dk, dv);
            c.RequirePast(context, HybridAttentionContract.Value, a, b, dk, dv);
            var position = context.Input(HybridAttentionOperator.InputPastPosition);
            StateChecks.RequireShape(position, "past_position", OrtElementType.Int64, [b], "[batch]");
            if (valuesOnHost)
            {
                StateChecks.RequireNonNegative(position, "past_position");
                StateChecks.RequireRoomFor(position, "past_position", qkv.SequenceLength);
            }
            c.RequirePast(context, HybridAttentionContract.CompressedKey, a, b, dk, dv);
            c.RequirePast(context, HybridAttentionContract.CompressedValue, a, b, dk, dv);
        }
        if (a.Compress == CompressKind.Hedgehog)
        {
            HybridAttentionFeatures.Require(context, a, qkv.KeyDim, valuesOnHost);
        }
        else
        {
            HybridAttentionFeatures.RefuseGiven(context, a);
        }
        return new HybridAttentionShapes(qkv, (int)rows, hasPast);
    }

    private static readonly (int, string)[] PastGroup = HybridAttentionContract.Contract.PastGroup();
}
