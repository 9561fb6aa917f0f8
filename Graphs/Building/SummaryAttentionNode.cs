using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Registration;
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
        IReadOnlyList<string> inputs, IReadOnlyList<string> outputs, string? name = null)
    {
        builder.Opset(OperatorRegistry.Domain, 1);
        AttributeProto[] attributes =
        [
            Attr.Int(HeadAttributes.QNumHeads.Name, o.QueryHeads),
            Attr.Int(HeadAttributes.KvNumHeads.Name, o.KvHeads),
            Attr.Float(HeadAttributes.ScaleAttr.Name, o.Scale),
            Attr.String(SummaryAttentionAttributes.SummaryAttr.Name, o.Summary),
            Attr.Int(SummaryAttentionAttributes.WindowAttr.Name, o.Window),
            Attr.Float(SummaryAttentionAttributes.AlphaAttr.Name, o.Alpha),
            Attr.Int(SummaryAttentionAttributes.NumSlotsAttr.Name, o.NumSlots),
        ];
        return builder.Node(SummaryAttentionOperator.OpName, TrimTrailingEmpty(inputs, 3), TrimTrailingEmpty(outputs, 1),
            OperatorRegistry.Domain, name, attributes);
    }

    /// <summary>Trailing absent optional names are dropped rather than written as "".</summary>
    internal static List<string> TrimTrailingEmpty(IReadOnlyList<string> names, int required)
    {
        var list = names.ToList();
        while (list.Count > required && list[^1].Length == 0)
        {
            list.RemoveAt(list.Count - 1);
        }
        return list;
    }
}
