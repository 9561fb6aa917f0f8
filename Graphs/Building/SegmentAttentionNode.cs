using OnnxAttention.Operators.SegmentAttention;

namespace OnnxAttention.Graphs.Building;

/// <summary>Adds <c>com.onnxattention.SegmentAttention</c> nodes, spelling the attributes as the operator reads them.</summary>
public static class SegmentAttentionNode
{
    public sealed record Options(int QueryHeads, int SegmentLength, int KvHeads = 0, float Scale = 0f);

    /// <summary>
    /// Inputs: query, key, value, then the optional past state (past_memory_key, past_memory_value,
    /// past_segment_key, past_segment_value, past_position; "" leaves one out). Outputs: output, then the optional
    /// present state in the same order ("" leaves one out).
    /// </summary>
    public static ModelBuilder SegmentAttention(this ModelBuilder builder, Options o,
        IReadOnlyList<string> inputs, IReadOnlyList<string> outputs, string? name = null) =>
        builder.AttentionNode(SegmentAttentionContract.Contract, [o.QueryHeads, o.KvHeads, o.Scale, o.SegmentLength], inputs, outputs, name);
}
