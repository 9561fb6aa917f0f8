using OnnxAttention.Graphs.Attention;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.SegmentAttention;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>Segment-level recurrence: each segment attends to itself and the cached previous segment.</summary>
internal sealed class SegmentReplacement(SegmentRule rule) : StatefulReplacement<SegmentAttentionAttributes>
{
    protected override OperatorContract<SegmentAttentionAttributes> Contract => SegmentAttentionContract.Contract;

    protected override SegmentAttentionAttributes Attributes(AttentionMatch m) =>
        SegmentAttentionAttributes.Validate(HeadAttributes.Validate(m.QueryHeads, m.KvHeads, (float)m.EffectiveScale), rule.SegmentLength);
}
