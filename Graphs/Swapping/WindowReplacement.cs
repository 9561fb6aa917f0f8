using OnnxAttention.Graphs.Attention;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.WindowAttention;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>Sliding-window softmax (plus sinks) with the model's own scale; state: one ring-buffer KV cache per layer.</summary>
internal sealed class WindowReplacement(WindowRule rule) : StatefulReplacement<WindowAttentionAttributes>
{
    protected override OperatorContract<WindowAttentionAttributes> Contract => WindowAttentionContract.Contract;

    protected override WindowAttentionAttributes Attributes(AttentionMatch m) =>
        WindowAttentionAttributes.Validate(HeadAttributes.Validate(m.QueryHeads, m.KvHeads, (float)m.EffectiveScale), rule.Window, rule.Sinks, 0f);
}
