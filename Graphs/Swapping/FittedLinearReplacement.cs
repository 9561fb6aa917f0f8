using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Normalised linear attention on learned Hedgehog features: the feature maps are written as plain nodes (MatMul with
/// the fitted weights, Add, two Softmax, Concat), so LinearAttention reads phi(q) and phi(k) as its query and key
/// with the identity map, and its state is [B, H_kv, 2m, d_v] whatever the head size.
/// </summary>
internal sealed class FittedLinearReplacement(FittedLinearRule rule) : IAttentionReplacement
{
    public string? Refusal(AttentionMatch m)
    {
        if (AttentionRequirements.CausalMemory(m) is { } why) return why;
        if (m.ElementType != TensorProto.Types.DataType.Float) return $"fitted feature maps are float32; the attention is {m.ElementType}";
        if (m.QueryHeads != rule.Query.Heads || m.KvHeads != rule.Key.Heads || m.HeadDim != rule.Query.HeadDim || m.HeadDim != rule.Key.HeadDim)
        {
            return $"the feature maps were fitted to {rule.Query.Heads} query / {rule.Key.Heads} KV heads of size {rule.Query.HeadDim}, " +
                   $"the attention has {m.QueryHeads} / {m.KvHeads} of size {m.HeadDim}";
        }
        return null;
    }

    public IReadOnlyList<StateTensor> Replace(Graph graph, AttentionMatch m, int layer, Dim batch)
    {
        var hint = $"layers.{layer}.attention";
        var q = Features(graph, PackedLayout.Pack(graph, m.Query, m.QueryLayout, hint + ".q"), rule.Query, $"{hint}.feature_q");
        var k = Features(graph, PackedLayout.Pack(graph, m.Key, m.KeyLayout, hint + ".k"), rule.Key, $"{hint}.feature_k");
        var onFeatures = m with { Query = q, QueryLayout = KeyLayout.Packed, Key = k, KeyLayout = KeyLayout.Packed, HeadDim = rule.Query.Features };
        return new LinearReplacement(new LinearRule("identity")).Replace(graph, onFeatures, layer, batch);
    }

    /// <summary>[B, T, H*d] to phi: [B, T, H*2m].</summary>
    private static string Features(Graph g, string packed, FeatureProjection map, string hint)
    {
        var heads = PackedLayout.Unpack(g, packed, map.Heads, map.HeadDim, hint + ".x");
        var weight = g.FreshName(hint + ".weight");
        g.AddInitializer(Tensors.Float(weight, map.Weight, map.Heads, map.HeadDim, map.Projections));
        var bias = g.FreshName(hint + ".bias");
        g.AddInitializer(Tensors.Float(bias, map.Bias, map.Heads, 1, map.Projections));
        var projected = g.FreshName(hint + ".projected");
        g.Add(GraphEdits.Node("MatMul", [heads, weight], projected));
        var u = g.FreshName(hint + ".u");
        g.Add(GraphEdits.Node("Add", [projected, bias], u));
        var negated = g.FreshName(hint + ".minus_u");
        g.Add(GraphEdits.Node("Neg", [u], negated));
        var positive = g.FreshName(hint + ".softmax_u");
        g.Add(GraphEdits.Node("Softmax", [u], positive, Attr.Int("axis", -1)));
        var negative = g.FreshName(hint + ".softmax_minus_u");
        g.Add(GraphEdits.Node("Softmax", [negated], negative, Attr.Int("axis", -1)));
        var phi = g.FreshName(hint + ".phi");
        g.Add(GraphEdits.Node("Concat", [positive, negative], phi, Attr.Int("axis", -1)));
        return PackedLayout.Pack(g, phi, KeyLayout.Bhsd, hint + ".phi");
    }
}
