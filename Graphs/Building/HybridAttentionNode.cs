using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.Registration;

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
        float Scale = 0f);

    /// <summary>
    /// Inputs: query, key, value, then the optional past state (past_key, past_value, past_position,
    /// past_compressed_key, past_compressed_value; "" leaves one out). Outputs: output, then the optional present
    /// state in the same order ("" leaves one out).
    /// </summary>
    public static ModelBuilder HybridAttention(this ModelBuilder builder, Options o,
        IReadOnlyList<string> inputs, IReadOnlyList<string> outputs, string? name = null)
    {
        builder.Opset(OperatorRegistry.Domain, 1);
        AttributeProto[] attributes =
        [
            Attr.Int(HeadAttributes.QNumHeads.Name, o.QueryHeads),
            Attr.Int(HeadAttributes.KvNumHeads.Name, o.KvHeads),
            Attr.Float(HeadAttributes.ScaleAttr.Name, o.Scale),
            Attr.Int(HybridAttentionAttributes.WindowAttr.Name, o.Window),
            Attr.String(HybridAttentionAttributes.CompressAttr.Name, o.Compress),
            Attr.Float(HybridAttentionAttributes.EpsilonAttr.Name, o.Epsilon),
        ];
        return builder.Node(HybridAttentionOperator.OpName, SummaryAttentionNode.TrimTrailingEmpty(inputs, 3),
            SummaryAttentionNode.TrimTrailingEmpty(outputs, 1), OperatorRegistry.Domain, name, attributes);
    }
}
