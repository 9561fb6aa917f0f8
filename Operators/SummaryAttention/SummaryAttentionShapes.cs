using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.SummaryAttention;

/// <summary>The sizes of one SummaryAttention call and whether it continues from a given state, all checked.</summary>
public readonly record struct SummaryAttentionShapes(QkvShapes Qkv, int SummaryRows, int WindowRows, bool HasPast)
{
    /// <param name="valuesOnHost">False on the CUDA execution provider: past_count is device memory there, so its values are
    /// not read (only its shape and type are checked).</param>
    internal static SummaryAttentionShapes From(in KernelContext context, SummaryAttentionAttributes a, bool valuesOnHost = true)
    {
        var qkv = QkvShapes.From(context, a.Heads, SummaryAttentionOperator.InputQuery, SummaryAttentionOperator.InputKey,
            SummaryAttentionOperator.InputValue);
        long b = qkv.Batch, h = a.Heads.KvHeads, dk = qkv.KeyDim, dv = qkv.ValueDim, s = a.SummaryRows, m = a.WindowRows;
        QkvShapes.RequireSize(b * h * s * Math.Max(dk, dv), "the summary state");
        QkvShapes.RequireSize(b * h * m * Math.Max(dk, dv), "the window state");

        var hasPast = StateChecks.AllOrNone(context, "SummaryAttention's past state", a.Kind == SummaryKind.Moving ? MovingGroup : SummaryGroup);
        if (hasPast)
        {
            StateChecks.RequireShape(context.Input(SummaryAttentionOperator.InputPastKeySummary), "past_key_summary",
                OrtElementType.Float, [b, h, s, dk], "[batch, kv_num_heads, num_slots, head_dim]");
            StateChecks.RequireShape(context.Input(SummaryAttentionOperator.InputPastValueSummary), "past_value_summary",
                OrtElementType.Float, [b, h, s, dv], "[batch, kv_num_heads, num_slots, v_head_dim]");
            var count = context.Input(SummaryAttentionOperator.InputPastCount);
            StateChecks.RequireShape(count, "past_count", OrtElementType.Int64, [b], "[batch]");
            if (valuesOnHost)
            {
                StateChecks.RequireNonNegative(count, "past_count");
                StateChecks.RequireRoomFor(count, "past_count", qkv.SequenceLength);
            }
        }
        // Ring buffers are checked whenever given: for the kinds without one they must be empty (0 rows), so a
        // graph written for moving summaries can carry them uniformly.
        if (context.HasInput(SummaryAttentionOperator.InputPastKeyWindow))
        {
            var window = context.Input(SummaryAttentionOperator.InputPastKeyWindow);
            if (!StateChecks.HasShape(window, OrtElementType.Float, [b, h, m, dk]))
            {
                StateChecks.RequireShape(window, "past_key_window", OrtElementType.Float, [b, h, m, dk], WindowLayout(a, "head_dim"));
            }
        }
        if (context.HasInput(SummaryAttentionOperator.InputPastValueWindow))
        {
            var window = context.Input(SummaryAttentionOperator.InputPastValueWindow);
            if (!StateChecks.HasShape(window, OrtElementType.Float, [b, h, m, dv]))
            {
                StateChecks.RequireShape(window, "past_value_window", OrtElementType.Float, [b, h, m, dv], WindowLayout(a, "v_head_dim"));
            }
        }
        return new SummaryAttentionShapes(qkv, (int)s, (int)m, hasPast);
    }

    // Built once: a decode step must not allocate for checks that pass.
    private static readonly (int, string)[] SummaryGroup =
    [
        (SummaryAttentionOperator.InputPastKeySummary, "past_key_summary"),
        (SummaryAttentionOperator.InputPastValueSummary, "past_value_summary"),
        (SummaryAttentionOperator.InputPastCount, "past_count"),
    ];

    private static readonly (int, string)[] MovingGroup =
    [
        .. SummaryGroup,
        (SummaryAttentionOperator.InputPastKeyWindow, "past_key_window"),
        (SummaryAttentionOperator.InputPastValueWindow, "past_value_window"),
    ];

    private static string WindowLayout(SummaryAttentionAttributes a, string dim) => a.Kind == SummaryKind.Moving
        ? $"[batch, kv_num_heads, window, {dim}]"
        : $"[batch, kv_num_heads, 0, {dim}] (summary={SummaryKinds.NameOf(a.Kind)} keeps no window)";
}
