using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.SummaryAttention;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>Summary-vector memory (cumulative, moving or exponential averages of keys and values).</summary>
internal sealed class SummaryReplacement(SummaryRule rule) : StatefulReplacement
{
    protected override string OpName => SummaryAttentionOperator.OpName;

    protected override IReadOnlyList<Slot> Slots(AttentionMatch m, int layer, Dim batch)
    {
        var ring = rule.Kind == "moving" ? rule.Window : 0;
        return
        [
            new(Float("key_summary", layer, batch, m.KvHeads, 1, m.HeadDim)),
            new(Float("value_summary", layer, batch, m.KvHeads, 1, m.ValueHeadDim)),
            new(null, Position: true),
            new(Float("key_window", layer, batch, m.KvHeads, ring, m.HeadDim)),
            new(Float("value_window", layer, batch, m.KvHeads, ring, m.ValueHeadDim)),
        ];
    }

    protected override AttributeProto[] Attributes(AttentionMatch m) =>
    [
        Attr.Int(HeadAttributes.QNumHeads.Name, m.QueryHeads),
        Attr.Int(HeadAttributes.KvNumHeads.Name, m.KvHeads),
        Attr.Float(HeadAttributes.ScaleAttr.Name, (float)m.EffectiveScale),
        Attr.String(SummaryAttentionAttributes.SummaryAttr.Name, rule.Kind),
        Attr.Int(SummaryAttentionAttributes.WindowAttr.Name, rule.Window),
        Attr.Float(SummaryAttentionAttributes.AlphaAttr.Name, rule.Alpha),
    ];
}
