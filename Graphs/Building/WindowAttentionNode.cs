using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Registration;
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
        IReadOnlyList<string> inputs, IReadOnlyList<string> outputs, string? name = null)
    {
        builder.Opset(OperatorRegistry.Domain, 1);
        AttributeProto[] attributes =
        [
            Attr.Int(HeadAttributes.QNumHeads.Name, o.QueryHeads),
            Attr.Int(HeadAttributes.KvNumHeads.Name, o.KvHeads),
            Attr.Float(HeadAttributes.ScaleAttr.Name, o.Scale),
            Attr.Int(WindowAttentionAttributes.WindowAttr.Name, o.Window),
            Attr.Int(WindowAttentionAttributes.SinksAttr.Name, o.Sinks),
            Attr.Float(WindowAttentionAttributes.SoftcapAttr.Name, o.Softcap),
        ];
        return builder.Node(WindowAttentionOperator.OpName, SummaryAttentionNode.TrimTrailingEmpty(inputs, 3),
            SummaryAttentionNode.TrimTrailingEmpty(outputs, 1), OperatorRegistry.Domain, name, attributes);
    }
}
