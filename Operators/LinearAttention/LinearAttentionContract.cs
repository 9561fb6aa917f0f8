using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.LinearAttention;

/// <summary>LinearAttention's interface (see <see cref="OperatorContract{TAttributes}"/>): the matrix state, the normaliser, and the gate and write-strength inputs.</summary>
public static class LinearAttentionContract
{
    /// <summary>The states, in the order declared below.</summary>
    public const int State = 0, Normalizer = 1;

    /// <summary>The inputs after the states.</summary>
    public const int Decay = 2, Beta = 3;

    public static OperatorContract<LinearAttentionAttributes> Contract { get; } = new(
        LinearAttentionOperator.OpName,
        "Causal linear attention with a matrix state and a normaliser vector, grouped KV heads, linear/gated/delta/gated_delta updates.",
        LinearAttentionAttributes.All,
        a => [a.QueryHeads, a.KvHeads, FeatureMaps.NameOf(a.FeatureMap), a.Normalize ? 1 : 0, a.Epsilon, a.Scale, UpdateRules.NameOf(a.UpdateRule), a.Decay],
        [
            new("state", static (a, dk, dv, t) => t.Set(a.KvHeads, dk, dv),
                static _ => "[batch, kv_num_heads, head_dim, v_head_dim]",
                "mu, [batch, kv_num_heads, head_dim, v_head_dim]; zeros when absent", "S after the last token"),
            new("normalizer", static (a, dk, _, t) => t.Set(a.KvHeads, dk),
                static _ => "[batch, kv_num_heads, head_dim]",
                "nu, [batch, kv_num_heads, head_dim]; zeros when absent", "nu after the last token"),
        ],
        static t =>
        [
            new("decay", t, Optional: true, Layout: BatchLayout.Tokens,
                Doc: "log-space gate g (multiplier exp(g)), [batch, sequence, kv_num_heads * head_dim] or [batch, sequence, kv_num_heads]; update_rule gated and gated_delta only"),
            new("beta", t, Optional: true, Layout: BatchLayout.Tokens,
                Doc: "write strength, used as given, [batch, sequence, kv_num_heads] or [batch, sequence, 1]; update_rule delta and gated_delta only"),
        ]);
}
