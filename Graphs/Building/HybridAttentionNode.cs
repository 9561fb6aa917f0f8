using OnnxAttention.Operators.HybridAttention;

namespace OnnxAttention.Graphs.Building;

/// <summary>Adds <c>com.onnxattention.HybridAttention</c> nodes, spelling the attributes as the operator reads them.</summary>
public static class HybridAttentionNode
{
    public sealed record Options(
        int QueryHeads,
        int Window,
        int KvHeads = 0,
        string Compress = "linear",
        float Epsilon = 1e-6f,
        float Scale = 0f,
        int Projections = 0);

    /// <summary>
    /// Inputs: query, key, value, then the optional past state (past_key, past_value, past_position,
    /// past_compressed_key, past_compressed_value; "" leaves one out), then compress=hedgehog's feature_query_weight,
    /// feature_query_bias, feature_key_weight, feature_key_bias and mix. Outputs: output, then the optional present
    /// state in the same order ("" leaves one out).
    /// </summary>
    public static ModelBuilder HybridAttention(this ModelBuilder builder, Options o,
        IReadOnlyList<string> inputs, IReadOnlyList<string> outputs, string? name = null) =>
        builder.AttentionNode(HybridAttentionContract.Contract, [o.QueryHeads, o.KvHeads, o.Scale, o.Window, o.Compress, o.Epsilon, o.Projections], inputs, outputs, name);
}
