using OnnxAttention.Graphs.Attention;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>A local window plus a compressed memory of what left it (see docs/operators/HybridAttention.md).</summary>
internal sealed class HybridReplacement(HybridRule rule) : StatefulReplacement<HybridAttentionAttributes>
{
    protected override OperatorContract<HybridAttentionAttributes> Contract => HybridAttentionContract.Contract;

    protected override HybridAttentionAttributes Attributes(AttentionMatch m) =>
        HybridAttentionAttributes.Validate(HeadAttributes.Validate(m.QueryHeads, m.KvHeads, (float)m.EffectiveScale), rule.Window,
            CompressKinds.ByName[rule.Compress], (float)HybridAttentionAttributes.EpsilonAttr.Default!);
}
