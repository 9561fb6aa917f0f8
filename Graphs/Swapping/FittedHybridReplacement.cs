using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>HybridAttention with compress=hedgehog: the fitted maps and mix become initializers feeding its further inputs.</summary>
internal sealed class FittedHybridReplacement(FittedHybridRule rule) : StatefulReplacement<HybridAttentionAttributes>
{
    protected override OperatorContract<HybridAttentionAttributes> Contract => HybridAttentionContract.Contract;

    public override string? Refusal(AttentionMatch m)
    {
        if (base.Refusal(m) is { } why) return why;
        if (m.QueryHeads != rule.Query.Heads || m.KvHeads != rule.Key.Heads || m.HeadDim != rule.Query.HeadDim || m.HeadDim != rule.Key.HeadDim
            || rule.Mix.Length != m.QueryHeads || rule.Query.Projections != rule.Key.Projections)
        {
            return $"the feature maps were fitted to {rule.Query.Heads} query / {rule.Key.Heads} KV heads of size {rule.Query.HeadDim}, " +
                   $"the attention has {m.QueryHeads} / {m.KvHeads} of size {m.HeadDim}";
        }
        return null;
    }

    protected override HybridAttentionAttributes Attributes(AttentionMatch m) =>
        HybridAttentionAttributes.Validate(HeadAttributes.Validate(m.QueryHeads, m.KvHeads, (float)m.EffectiveScale), rule.Window,
            CompressKind.Hedgehog, (float)HybridAttentionAttributes.EpsilonAttr.Default!, rule.Query.Projections);

    protected override IReadOnlyList<string> FurtherInputs(Graph graph, AttentionMatch m, int layer)
    {
        var hint = $"layers.{layer}.attention";
        string Add(string name, float[] values, params long[] dims)
        {
            var fresh = graph.FreshName($"{hint}.{name}");
            graph.AddInitializer(Tensors.Float(fresh, values, dims));
            return fresh;
        }
        var (q, k, mCount) = (rule.Query, rule.Key, rule.Query.Projections);
        return
        [
            Add("feature_query_weight", q.Weight, q.Heads, q.HeadDim, mCount),
            Add("feature_query_bias", q.Bias, q.Heads, mCount),
            Add("feature_key_weight", k.Weight, k.Heads, k.HeadDim, mCount),
            Add("feature_key_bias", k.Bias, k.Heads, mCount),
            Add("mix", rule.Mix, rule.Mix.Length),
        ];
    }
}
