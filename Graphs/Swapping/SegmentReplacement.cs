using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.SegmentAttention;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>Segment-level recurrence: each segment attends to itself and the cached previous segment.</summary>
internal sealed class SegmentReplacement(SegmentRule rule) : StatefulReplacement
{
    protected override string OpName => SegmentAttentionOperator.OpName;

    protected override IReadOnlyList<Slot> Slots(AttentionMatch m, int layer, Dim batch) =>
    [
        new(Float("memory_key", layer, batch, m.KvHeads, rule.SegmentLength, m.HeadDim)),
        new(Float("memory_value", layer, batch, m.KvHeads, rule.SegmentLength, m.ValueHeadDim)),
        new(Float("segment_key", layer, batch, m.KvHeads, rule.SegmentLength, m.HeadDim)),
        new(Float("segment_value", layer, batch, m.KvHeads, rule.SegmentLength, m.ValueHeadDim)),
        new(null, Position: true),
    ];

    protected override AttributeProto[] Attributes(AttentionMatch m) =>
    [
        Attr.Int(HeadAttributes.QNumHeads.Name, m.QueryHeads),
        Attr.Int(HeadAttributes.KvNumHeads.Name, m.KvHeads),
        Attr.Float(HeadAttributes.ScaleAttr.Name, (float)m.EffectiveScale),
        Attr.Int(SegmentAttentionAttributes.SegmentLengthAttr.Name, rule.SegmentLength),
    ];
}
