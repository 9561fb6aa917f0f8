using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.HybridAttention;

/// <summary>HybridAttention's interface (see <see cref="OperatorContract{TAttributes}"/>): a window cache, the position and a compressed memory.</summary>
public static class HybridAttentionContract
{
    /// <summary>The states, in the order declared below.</summary>
    public const int Key = 0, Value = 1, Position = 2, CompressedKey = 3, CompressedValue = 4;

    public static OperatorContract<HybridAttentionAttributes> Contract { get; } = new(
        HybridAttentionOperator.OpName,
        "Sliding-window softmax attention plus a compressed memory (linear attention or mean slot) of the evicted tokens.",
        HybridAttentionAttributes.All,
        a => [a.Heads.QueryHeads, a.Heads.KvHeads, a.Heads.Scale, a.Window, CompressKinds.NameOf(a.Compress), a.Epsilon],
        [
            new("key", static (a, dk, _, t) => t.Set(a.Heads.KvHeads, a.Window, dk),
                static _ => "[batch, kv_num_heads, window, head_dim]",
                "[batch, kv_num_heads, window, head_dim]: ring buffer, position p in row p mod window"),
            new("value", static (a, _, dv, t) => t.Set(a.Heads.KvHeads, a.Window, dv),
                static _ => "[batch, kv_num_heads, window, v_head_dim]",
                "[batch, kv_num_heads, window, v_head_dim]: ring buffer, position p in row p mod window"),
            StateSpec<HybridAttentionAttributes>.Position("position", "[batch]: tokens seen so far", "past_position + sequence"),
            new("compressed_key", static (a, dk, _, t) => t.Set(a.Heads.KvHeads, dk),
                static _ => "[batch, kv_num_heads, head_dim]",
                "[batch, kv_num_heads, head_dim]: nu = sum phi(k) (linear) or the key sum (mean) over evicted tokens"),
            new("compressed_value", static (a, dk, dv, t) => t.Set(a.Heads.KvHeads, a.Compress == CompressKind.Linear ? dk : 1, dv),
                static a => a.Compress == CompressKind.Linear
                    ? "[batch, kv_num_heads, head_dim, v_head_dim] (compress=linear)"
                    : "[batch, kv_num_heads, 1, v_head_dim] (compress=mean)",
                "[batch, kv_num_heads, head_dim, v_head_dim]: mu = sum phi(k)^T v (linear); [batch, kv_num_heads, 1, v_head_dim]: the value sum (mean)"),
        ]);
}
