using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.WindowAttention;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>Sliding-window softmax (plus sinks) with the model's own scale; state: one ring-buffer KV cache per layer.</summary>
internal sealed class WindowReplacement(WindowRule rule) : StatefulReplacement
{
    protected override string OpName => WindowAttentionOperator.OpName;

    protected override bool PositionPerRow => false;

    protected override IReadOnlyList<Slot> Slots(AttentionMatch m, int layer, Dim batch) =>
    [
        new(Float("key_cache", layer, batch, m.KvHeads, rule.Sinks + rule.Window, m.HeadDim)),
        new(Float("value_cache", layer, batch, m.KvHeads, rule.Sinks + rule.Window, m.ValueHeadDim)),
        new(null, Position: true),
    ];

    protected override AttributeProto[] Attributes(AttentionMatch m) =>
    [
        Attr.Int(HeadAttributes.QNumHeads.Name, m.QueryHeads),
        Attr.Int(HeadAttributes.KvNumHeads.Name, m.KvHeads),
        Attr.Float(HeadAttributes.ScaleAttr.Name, (float)m.EffectiveScale),
        Attr.Int(WindowAttentionAttributes.WindowAttr.Name, rule.Window),
        Attr.Int(WindowAttentionAttributes.SinksAttr.Name, rule.Sinks),
    ];
}
