using OnnxAttention.Graphs.Attention;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.SummaryAttention;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>Summary-vector memory (cumulative, moving or exponential averages of keys and values).</summary>
internal sealed class SummaryReplacement(SummaryRule rule) : StatefulReplacement<SummaryAttentionAttributes>
{
    protected override OperatorContract<SummaryAttentionAttributes> Contract => SummaryAttentionContract.Contract;

    protected override SummaryAttentionAttributes Attributes(AttentionMatch m) =>
        SummaryAttentionAttributes.Validate(HeadAttributes.Validate(m.QueryHeads, m.KvHeads, (float)m.EffectiveScale),
            SummaryKinds.ByName[rule.Kind], rule.Window, rule.Alpha, 1);
}
