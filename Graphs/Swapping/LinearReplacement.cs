using OnnxAttention.Graphs.Attention;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Replaces softmax attention with normalised linear attention on the same (post-RoPE) queries and keys:
/// y_i = phi(q_i) S_i / (phi(q_i) . z_i + 1e-6), unscaled q and k, state S [B, H_kv, d, d_v] and z [B, H_kv, d].
/// </summary>
internal sealed class LinearReplacement(LinearRule rule) : StatefulReplacement<LinearAttentionAttributes>
{
    public const float Epsilon = 1e-6f;

    protected override OperatorContract<LinearAttentionAttributes> Contract => LinearAttentionContract.Contract;

    /// <summary>Any layout, and soft-capped scores too: the scores are not computed.</summary>
    public override string? Refusal(AttentionMatch m) => AttentionRequirements.CausalMemory(m);

    protected override LinearAttentionAttributes Attributes(AttentionMatch m) =>
        LinearAttentionAttributes.Validate(m.QueryHeads, m.KvHeads, FeatureMaps.ByName[rule.FeatureMap], normalize: 1, Epsilon, scale: 1f);
}
