using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.SegmentAttention;

/// <summary>SegmentAttention's interface (see <see cref="OperatorContract{TAttributes}"/>): the previous and current segments and the position.</summary>
public static class SegmentAttentionContract
{
    /// <summary>The states, in the order declared below.</summary>
    public const int MemoryKey = 0, MemoryValue = 1, SegmentKey = 2, SegmentValue = 3, Position = 4;

    public static OperatorContract<SegmentAttentionAttributes> Contract { get; } = new(
        SegmentAttentionOperator.OpName,
        "Softmax attention over the previous segment (cached memory) and the current segment up to the token.",
        SegmentAttentionAttributes.All,
        a => [a.Heads.QueryHeads, a.Heads.KvHeads, a.Heads.Scale, a.SegmentLength],
        [
            new("memory_key", static (a, dk, _, t) => t.Set(a.Heads.KvHeads, a.SegmentLength, dk),
                static _ => "[batch, kv_num_heads, segment_length, head_dim]",
                "[batch, kv_num_heads, segment_length, head_dim]: the previous segment's keys, position p in row p mod L", TokenRows: true),
            new("memory_value", static (a, _, dv, t) => t.Set(a.Heads.KvHeads, a.SegmentLength, dv),
                static _ => "[batch, kv_num_heads, segment_length, v_head_dim]",
                "[batch, kv_num_heads, segment_length, v_head_dim]: the previous segment's values", TokenRows: true),
            new("segment_key", static (a, dk, _, t) => t.Set(a.Heads.KvHeads, a.SegmentLength, dk),
                static _ => "[batch, kv_num_heads, segment_length, head_dim]",
                "[batch, kv_num_heads, segment_length, head_dim]: the current partial segment's keys, rows 0 .. past_position mod L - 1", TokenRows: true),
            new("segment_value", static (a, _, dv, t) => t.Set(a.Heads.KvHeads, a.SegmentLength, dv),
                static _ => "[batch, kv_num_heads, segment_length, v_head_dim]",
                "[batch, kv_num_heads, segment_length, v_head_dim]: the current partial segment's values", TokenRows: true),
            StateSpec<SegmentAttentionAttributes>.Position("position", "[batch]: tokens seen so far", "past_position + sequence"),
        ]);
}
