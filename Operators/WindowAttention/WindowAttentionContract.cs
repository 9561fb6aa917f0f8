using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.WindowAttention;

/// <summary>WindowAttention's interface (see <see cref="OperatorContract{TAttributes}"/>): a ring-buffer KV cache and the position.</summary>
public static class WindowAttentionContract
{
    /// <summary>The states, in the order declared below.</summary>
    public const int KeyCache = 0, ValueCache = 1, Position = 2;

    public static OperatorContract<WindowAttentionAttributes> Contract { get; } = new(
        WindowAttentionOperator.OpName,
        "Causal sliding-window softmax attention with attention sinks over a fixed-size ring-buffer KV cache.",
        WindowAttentionAttributes.All,
        a => [a.Heads.QueryHeads, a.Heads.KvHeads, a.Heads.Scale, a.Window, a.Sinks, a.Softcap],
        [
            new("key_cache", static (a, dk, _, t) => t.Set(a.Heads.KvHeads, a.CacheRows, dk),
                static a => a.Sinks > 0 ? "[batch, kv_num_heads, sinks + window, head_dim]" : "[batch, kv_num_heads, window, head_dim]",
                "[batch, kv_num_heads, sinks + window, head_dim]: rows 0..sinks-1 hold positions 0..sinks-1, position p is also in row sinks + p mod window", TokenRows: true),
            new("value_cache", static (a, _, dv, t) => t.Set(a.Heads.KvHeads, a.CacheRows, dv),
                static a => a.Sinks > 0 ? "[batch, kv_num_heads, sinks + window, v_head_dim]" : "[batch, kv_num_heads, window, v_head_dim]",
                "[batch, kv_num_heads, sinks + window, v_head_dim]: the same for values", TokenRows: true),
            StateSpec<WindowAttentionAttributes>.Position("position", "[batch] or [1]: tokens seen so far",
                "past_position + sequence, shaped as past_position ([batch] when absent)", acceptsShared: true),
        ]);
}
