using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.SummaryAttention;

/// <summary>SummaryAttention's interface (see <see cref="OperatorContract{TAttributes}"/>): summary vectors, the count and a ring for moving means.</summary>
public static class SummaryAttentionContract
{
    /// <summary>The states, in the order declared below.</summary>
    public const int KeySummary = 0, ValueSummary = 1, Count = 2, KeyWindow = 3, ValueWindow = 4;

    public static OperatorContract<SummaryAttentionAttributes> Contract { get; } = new(
        SummaryAttentionOperator.OpName,
        "Causal softmax attention over summary vectors (running, moving or exponential means) plus the current token.",
        SummaryAttentionAttributes.All,
        a => [a.Heads.QueryHeads, a.Heads.KvHeads, a.Heads.Scale, SummaryKinds.NameOf(a.Kind), a.Window, a.Alpha, a.NumSlots],
        [
            new("key_summary", static (a, dk, _, t) => t.Set(a.Heads.KvHeads, a.SummaryRows, dk),
                static _ => "[batch, kv_num_heads, num_slots, head_dim]",
                "[batch, kv_num_heads, num_slots, head_dim]: key sums (cumulative, moving) or uncorrected EMAs (ema)"),
            new("value_summary", static (a, _, dv, t) => t.Set(a.Heads.KvHeads, a.SummaryRows, dv),
                static _ => "[batch, kv_num_heads, num_slots, v_head_dim]",
                "[batch, kv_num_heads, num_slots, v_head_dim]: the same for values"),
            StateSpec<SummaryAttentionAttributes>.Position("count", "[batch]: tokens absorbed so far", "past_count + sequence"),
            new("key_window", static (a, dk, _, t) => t.Set(a.Heads.KvHeads, a.WindowRows, dk),
                static a => WindowLayout(a, "head_dim"),
                "[batch, kv_num_heads, window, head_dim]: ring buffer, position p in row p mod window (0 rows unless moving)", TokenRows: true),
            new("value_window", static (a, _, dv, t) => t.Set(a.Heads.KvHeads, a.WindowRows, dv),
                static a => WindowLayout(a, "v_head_dim"),
                "[batch, kv_num_heads, window, v_head_dim]: the same for values", TokenRows: true),
        ]);

    private static string WindowLayout(SummaryAttentionAttributes a, string dim) => a.Kind == SummaryKind.Moving
        ? $"[batch, kv_num_heads, window, {dim}]"
        : $"[batch, kv_num_heads, 0, {dim}] (summary={SummaryKinds.NameOf(a.Kind)} keeps no window)";
}
