using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.HybridAttention;

/// <summary>The sizes of one HybridAttention call and whether it continues from a given state, all checked.</summary>
public readonly record struct HybridAttentionShapes(QkvShapes Qkv, int CompressedValueRows, bool HasPast)
{
    internal static HybridAttentionShapes From(in KernelContext context, HybridAttentionAttributes a)
    {
        var qkv = QkvShapes.From(context, a.Heads, HybridAttentionOperator.InputQuery, HybridAttentionOperator.InputKey,
            HybridAttentionOperator.InputValue);
        long b = qkv.Batch, h = a.Heads.KvHeads, w = a.Window, dk = qkv.KeyDim, dv = qkv.ValueDim;
        long rows = a.CompressedValueRows(qkv.KeyDim);
        QkvShapes.RequireSize(b * h * w * Math.Max(dk, dv), "the KV cache");
        QkvShapes.RequireSize(b * h * rows * dv, "the compressed value state");

        var hasPast = StateChecks.AllOrNone(context, "HybridAttention's past state",
        [
            (HybridAttentionOperator.InputPastKey, "past_key"),
            (HybridAttentionOperator.InputPastValue, "past_value"),
            (HybridAttentionOperator.InputPastPosition, "past_position"),
            (HybridAttentionOperator.InputPastCompressedKey, "past_compressed_key"),
            (HybridAttentionOperator.InputPastCompressedValue, "past_compressed_value"),
        ]);
        if (hasPast)
        {
            StateChecks.RequireShape(context.Input(HybridAttentionOperator.InputPastKey), "past_key",
                OrtElementType.Float, [b, h, w, dk], "[batch, kv_num_heads, window, head_dim]");
            StateChecks.RequireShape(context.Input(HybridAttentionOperator.InputPastValue), "past_value",
                OrtElementType.Float, [b, h, w, dv], "[batch, kv_num_heads, window, v_head_dim]");
            var position = context.Input(HybridAttentionOperator.InputPastPosition);
            StateChecks.RequireShape(position, "past_position", OrtElementType.Int64, [b], "[batch]");
            StateChecks.RequireNonNegative(position, "past_position");
            StateChecks.RequireRoomFor(position, "past_position", qkv.SequenceLength);
            StateChecks.RequireShape(context.Input(HybridAttentionOperator.InputPastCompressedKey), "past_compressed_key",
                OrtElementType.Float, [b, h, dk], "[batch, kv_num_heads, head_dim]");
            StateChecks.RequireShape(context.Input(HybridAttentionOperator.InputPastCompressedValue), "past_compressed_value",
                OrtElementType.Float, [b, h, rows, dv], a.Compress == CompressKind.Linear
                    ? "[batch, kv_num_heads, head_dim, v_head_dim] (compress=linear)"
                    : "[batch, kv_num_heads, 1, v_head_dim] (compress=mean)");
        }
        return new HybridAttentionShapes(qkv, (int)rows, hasPast);
    }
}
