using OnnxAttention.Operators.WindowAttention;

namespace OnnxAttention.Graphs.Building;

/// <summary>Adds <c>com.onnxattention.WindowAttention</c> nodes, spelling the attributes as the operator reads them.</summary>
public static class WindowAttentionNode
{
    public sealed record Options(
        int QueryHeads,
        int Window,
        int KvHeads = 0,
        int Sinks = 0,
        float Scale = 0f,
        float Softcap = 0f);

    /// <summary>
    /// Inputs: query, key, value, then the optional past state (past_key_cache, past_value_cache, past_position;
    /// "" leaves one out). Outputs: output, then the optional present state in the same order ("" leaves one out).
    /// </summary>
    public static ModelBuilder WindowAttention(this ModelBuilder builder, Options o,
        IReadOnlyList<string> inputs, IReadOnlyList<string> outputs, string? name = null) =>
        builder.AttentionNode(WindowAttentionContract.Contract, [o.QueryHeads, o.KvHeads, o.Scale, o.Window, o.Sinks, o.Softcap], inputs, outputs, name);
}
