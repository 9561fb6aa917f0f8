using OnnxAttention.Operators.SummaryAttention;

namespace OnnxAttention.Graphs.Building;

/// <summary>Adds <c>com.onnxattention.SummaryAttention</c> nodes, spelling the attributes as the operator reads them.</summary>
public static class SummaryAttentionNode
{
    public sealed record Options(
        int QueryHeads,
        int KvHeads = 0,
        string Summary = "cumulative",
        int Window = 0,
        float Alpha = 0.9f,
        int NumSlots = 1,
        float Scale = 0f);

    /// <summary>
    /// Inputs: query, key, value, then the optional past state (past_key_summary, past_value_summary, past_count,
    /// past_key_window, past_value_window; "" leaves one out). Outputs: output, then the optional present state in
    /// the same order ("" leaves one out).
    /// </summary>
    public static ModelBuilder SummaryAttention(this ModelBuilder builder, Options o,
        IReadOnlyList<string> inputs, IReadOnlyList<string> outputs, string? name = null) =>
        builder.AttentionNode(SummaryAttentionContract.Contract, [o.QueryHeads, o.KvHeads, o.Scale, o.Summary, o.Window, o.Alpha, o.NumSlots], inputs, outputs, name);
}
