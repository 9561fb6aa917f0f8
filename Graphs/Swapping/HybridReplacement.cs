using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.HybridAttention;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>A local window plus a compressed memory of what left it (see docs/operators/HybridAttention.md).</summary>
internal sealed class HybridReplacement(HybridRule rule) : StatefulReplacement
{
    protected override string OpName => HybridAttentionOperator.OpName;

    protected override IReadOnlyList<Slot> Slots(AttentionMatch m, int layer, Dim batch) =>
    [
        new(Float("key_cache", layer, batch, m.KvHeads, rule.Window, m.HeadDim)),
        new(Float("value_cache", layer, batch, m.KvHeads, rule.Window, m.ValueHeadDim)),
        new(null, Position: true),
        new(Float("compressed_key", layer, batch, m.KvHeads, m.HeadDim)),
        new(Float("compressed_value", layer, batch, m.KvHeads, rule.Compress == "linear" ? m.HeadDim : 1, m.ValueHeadDim)),
    ];

    protected override AttributeProto[] Attributes(AttentionMatch m) =>
    [
        Attr.Int(HeadAttributes.QNumHeads.Name, m.QueryHeads),
        Attr.Int(HeadAttributes.KvNumHeads.Name, m.KvHeads),
        Attr.Float(HeadAttributes.ScaleAttr.Name, (float)m.EffectiveScale),
        Attr.Int(HybridAttentionAttributes.WindowAttr.Name, rule.Window),
        Attr.String(HybridAttentionAttributes.CompressAttr.Name, rule.Compress),
    ];
}
