using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.SummaryAttention;

/// <summary>The sizes of one SummaryAttention call and whether it continues from a given state, all checked.</summary>
public readonly record struct SummaryAttentionShapes(QkvShapes Qkv, int SummaryRows, int WindowRows, bool HasPast)
{
    internal static SummaryAttentionShapes From(in KernelContext context, SummaryAttentionAttributes a)
    {
        var qkv = QkvShapes.From(context, a.Heads, SummaryAttentionOperator.InputQuery, SummaryAttentionOperator.InputKey,
            SummaryAttentionOperator.InputValue);
        long b = qkv.Batch, h = a.Heads.KvHeads, dk = qkv.KeyDim, dv = qkv.ValueDim, s = a.SummaryRows, m = a.WindowRows;
        QkvShapes.RequireSize(b * h * s * Math.Max(dk, dv), "the summary state");
        QkvShapes.RequireSize(b * h * m * Math.Max(dk, dv), "the window state");

        (int, string)[] group = a.Kind == SummaryKind.Moving
            ?
            [
                (SummaryAttentionOperator.InputPastKeySummary, "past_key_summary"),
                (SummaryAttentionOperator.InputPastValueSummary, "past_value_summary"),
                (SummaryAttentionOperator.InputPastCount, "past_count"),
                (SummaryAttentionOperator.InputPastKeyWindow, "past_key_window"),
                (SummaryAttentionOperator.InputPastValueWindow, "past_value_window"),
            ]
            :
            [
                (SummaryAttentionOperator.InputPastKeySummary, "past_key_summary"),
                (SummaryAttentionOperator.InputPastValueSummary, "past_value_summary"),
                (SummaryAttentionOperator.InputPastCount, "past_count"),
            ];
        var hasPast = StateChecks.AllOrNone(context, "SummaryAttention's past state", group);
        if (hasPast)
        {
            StateChecks.RequireShape(context.Input(SummaryAttentionOperator.InputPastKeySummary), "past_key_summary",
                OrtElementType.Float, [b, h, s, dk], "[batch, kv_num_heads, num_slots, head_dim]");
            StateChecks.RequireShape(context.Input(SummaryAttentionOperator.InputPastValueSummary), "past_value_summary",
                OrtElementType.Float, [b, h, s, dv], "[batch, kv_num_heads, num_slots, v_head_dim]");
            var count = context.Input(SummaryAttentionOperator.InputPastCount);
            StateChecks.RequireShape(count, "past_count", OrtElementType.Int64, [b], "[batch]");
            StateChecks.RequireNonNegative(count, "past_count");
            StateChecks.RequireRoomFor(count, "past_count", qkv.SequenceLength);
        }
        // Ring buffers are checked whenever given: for the kinds without one they must be empty (0 rows), so a
        // graph written for moving summaries can carry them uniformly.
        if (context.HasInput(SummaryAttentionOperator.InputPastKeyWindow))
        {
            StateChecks.RequireShape(context.Input(SummaryAttentionOperator.InputPastKeyWindow), "past_key_window",
                OrtElementType.Float, [b, h, m, dk], WindowLayout(a, "head_dim"));
        }
        if (context.HasInput(SummaryAttentionOperator.InputPastValueWindow))
        {
            StateChecks.RequireShape(context.Input(SummaryAttentionOperator.InputPastValueWindow), "past_value_window",
                OrtElementType.Float, [b, h, m, dv], WindowLayout(a, "v_head_dim"));
        }
        return new SummaryAttentionShapes(qkv, (int)s, (int)m, hasPast);
    }

    private static string WindowLayout(SummaryAttentionAttributes a, string dim) => a.Kind == SummaryKind.Moving
        ? $"[batch, kv_num_heads, window, {dim}]"
        : $"[batch, kv_num_heads, 0, {dim}] (summary={SummaryKinds.NameOf(a.Kind)} keeps no window)";
}
