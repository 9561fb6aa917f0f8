using OnnxAttention.Operators.LinearAttention;

namespace OnnxAttention.Graphs.Building;

/// <summary>Adds <c>com.onnxattention.LinearAttention</c> nodes, spelling the attributes as the operator reads them.</summary>
public static class LinearAttentionNode
{
    /// <param name="UpdateRule">linear, gated, delta or gated_delta.</param>
    /// <param name="Decay">The fixed decay factor gamma (attribute <c>decay</c>), in (0, 1].</param>
    public sealed record Options(
        int QueryHeads,
        int KvHeads = 0,
        string FeatureMap = "elu_plus_one",
        bool Normalize = true,
        float Epsilon = 1e-6f,
        float Scale = 1f,
        string UpdateRule = "linear",
        float Decay = 1f);

    /// <summary>
    /// Inputs past_state/past_normalizer may be "" (start from zeros); decay (the log-space gate input) and beta
    /// are given only for the update rules that use them.
    /// </summary>
    public static ModelBuilder LinearAttention(this ModelBuilder builder, Options o,
        string query, string key, string value, string pastState, string pastNormalizer,
        string output, string presentState, string presentNormalizer, string? name = null,
        string decay = "", string beta = "") =>
        builder.AttentionNode(LinearAttentionContract.Contract,
            [o.QueryHeads, o.KvHeads, o.FeatureMap, o.Normalize ? 1 : 0, o.Epsilon, o.Scale, o.UpdateRule, o.Decay],
            [query, key, value, pastState, pastNormalizer, decay, beta], [output, presentState, presentNormalizer], name);
}
