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
        var c = SummaryAttentionContract.Contract;
        if (hasPast)
        {
            c.RequirePast(context, SummaryAttentionContract.KeySummary, a, b, dk, dv);
            c.RequirePast(context, SummaryAttentionContract.ValueSummary, a, b, dk, dv);
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
            c.RequirePast(context, SummaryAttentionContract.KeyWindow, a, b, dk, dv);
        }
        if (context.HasInput(SummaryAttentionOperator.InputPastValueWindow))
        {
            c.RequirePast(context, SummaryAttentionContract.ValueWindow, a, b, dk, dv);
        }
        return new SummaryAttentionShapes(qkv, (int)s, (int)m, hasPast);
    }

    // Built once: a decode step must not allocate for checks that pass.
    private static readonly (int, string)[] SummaryGroup =
        SummaryAttentionContract.Contract.PastGroup(s => s.Name is not ("key_window" or "value_window"));

    private static readonly (int, string)[] MovingGroup = SummaryAttentionContract.Contract.PastGroup();
}
