using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.HybridAttention;

/// <summary>HybridAttention's interface (see <see cref="OperatorContract{TAttributes}"/>): a window cache, the position and a compressed memory.</summary>
public static class HybridAttentionContract
{
    /// <summary>The states, in the order declared below.</summary>
    public const int Key = 0, Value = 1, Position = 2, CompressedKey = 3, CompressedValue = 4;

    /// <summary>The inputs after the states: compress=hedgehog's feature maps and mix.</summary>
    public const int FeatureQueryWeight = 5, FeatureQueryBias = 6, FeatureKeyWeight = 7, FeatureKeyBias = 8, Mix = 9;

    public static OperatorContract<HybridAttentionAttributes> Contract { get; } = new(
        HybridAttentionOperator.OpName,
        "Sliding-window softmax attention plus a compressed memory (linear attention, mean slot, or linear attention on learned features sharing the window's normaliser) of the evicted tokens.",
        HybridAttentionAttributes.All,
        a => [a.Heads.QueryHeads, a.Heads.KvHeads, a.Heads.Scale, a.Window, CompressKinds.NameOf(a.Compress), a.Epsilon, a.Projections],
        [
            new("key", static (a, dk, _, t) => t.Set(a.Heads.KvHeads, a.Window, dk),
                static _ => "[batch, kv_num_heads, window, head_dim]",
                "[batch, kv_num_heads, window, head_dim]: ring buffer, position p in row p mod window", TokenRows: true),
            new("value", static (a, _, dv, t) => t.Set(a.Heads.KvHeads, a.Window, dv),
                static _ => "[batch, kv_num_heads, window, v_head_dim]",
                "[batch, kv_num_heads, window, v_head_dim]: ring buffer, position p in row p mod window", TokenRows: true),
            StateSpec<HybridAttentionAttributes>.Position("position", "[batch]: tokens seen so far", "past_position + sequence"),
            new("compressed_key", static (a, dk, _, t) => t.Set(a.Heads.KvHeads, a.Compress == CompressKind.Hedgehog ? 2L * a.Projections : dk),
                static a => a.Compress == CompressKind.Hedgehog ? "[batch, kv_num_heads, 2 * projections] (compress=hedgehog)" : "[batch, kv_num_heads, head_dim]",
                "[batch, kv_num_heads, head_dim]: nu = sum phi(k) (linear) or the key sum (mean) over evicted tokens; [batch, kv_num_heads, 2 * projections]: nu = sum phi(k) (hedgehog)"),
            new("compressed_value", static (a, dk, dv, t) => t.Set(a.Heads.KvHeads, a.Compress switch { CompressKind.Mean => 1, CompressKind.Hedgehog => 2L * a.Projections, _ => dk }, dv),
                static a => a.Compress switch
                {
                    CompressKind.Linear => "[batch, kv_num_heads, head_dim, v_head_dim] (compress=linear)",
                    CompressKind.Hedgehog => "[batch, kv_num_heads, 2 * projections, v_head_dim] (compress=hedgehog)",
                    _ => "[batch, kv_num_heads, 1, v_head_dim] (compress=mean)",
                },
                "[batch, kv_num_heads, head_dim, v_head_dim]: mu = sum phi(k)^T v (linear; 2 * projections rows for hedgehog); [batch, kv_num_heads, 1, v_head_dim]: the value sum (mean)"),
        ],
        static _ =>
        [
            new("feature_query_weight", OrtElementType.Float, Optional: true,
                Doc: "compress=hedgehog only: W_q, float32 [q_num_heads, head_dim, projections]; phi(q) = [softmax(q W_q + b_q), softmax(-(q W_q + b_q))] per head"),
            new("feature_query_bias", OrtElementType.Float, Optional: true, Doc: "compress=hedgehog only: b_q, float32 [q_num_heads, projections]"),
            new("feature_key_weight", OrtElementType.Float, Optional: true, Doc: "compress=hedgehog only: W_k, float32 [kv_num_heads, head_dim, projections]"),
            new("feature_key_bias", OrtElementType.Float, Optional: true, Doc: "compress=hedgehog only: b_k, float32 [kv_num_heads, projections]"),
            new("mix", OrtElementType.Float, Optional: true,
                Doc: "compress=hedgehog only: alpha >= 0 per query head, float32 [q_num_heads], the weight of the linear memory in the shared normaliser"),
        ]);
}
