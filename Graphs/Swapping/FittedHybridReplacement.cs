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

    protected override string FurtherInput(Graph graph, AttentionMatch m, TensorSpec spec, string hint)
    {
        var (q, k, projections) = (rule.Query, rule.Key, rule.Query.Projections);
        var (values, dims) = spec.Name switch
        {
            "feature_query_weight" => (q.Weight, new long[] { q.Heads, q.HeadDim, projections }),
            "feature_query_bias" => (q.Bias, [q.Heads, projections]),
            "feature_key_weight" => (k.Weight, [k.Heads, k.HeadDim, projections]),
            "feature_key_bias" => (k.Bias, [k.Heads, projections]),
            "mix" => (rule.Mix, [rule.Mix.Length]),
            _ => (null, []),
        };
        if (values is null) return base.FurtherInput(graph, m, spec, hint);
        var name = graph.FreshName($"{hint}.{spec.Name}");
        graph.AddInitializer(Tensors.Float(name, values, dims));
        return name;
    }
}
