using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.Registration;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Replaces softmax attention with normalised linear attention on the same (post-RoPE) queries and keys:
/// y_i = phi(q_i) S_i / (phi(q_i) . z_i + 1e-6), unscaled q and k, state S [B, H_kv, d, d_v] and z [B, H_kv, d].
/// </summary>
internal sealed class LinearReplacement(LinearRule rule) : IAttentionReplacement
{
    public const float Epsilon = 1e-6f;

    /// <summary>Any layout: the operator's packed one is converted to and from.</summary>
    public string? Refusal(AttentionMatch m) => AttentionRequirements.CausalMemory(m);

    public IReadOnlyList<StateTensor> Replace(Graph graph, AttentionMatch m, int layer, Dim batch)
    {
        var hint = $"layers.{layer}.attention";
        var q = PackedLayout.Pack(graph, m.Query, m.QueryLayout, hint + ".q");
        var k = PackedLayout.Pack(graph, m.Key, m.KeyLayout, hint + ".k");
        var v = PackedLayout.Pack(graph, m.Value, m.ValueLayout, hint + ".v");
        var state = new StateTensor($"past_state.{layer}", $"present_state.{layer}", TensorProto.Types.DataType.Float,
            [batch, m.KvHeads, m.HeadDim, m.ValueHeadDim], InPlace: true);
        var normalizer = new StateTensor($"past_normalizer.{layer}", $"present_normalizer.{layer}", TensorProto.Types.DataType.Float,
            [batch, m.KvHeads, m.HeadDim], InPlace: true);
        var y = graph.FreshName(hint + ".linear");

        var node = new NodeProto { OpType = LinearAttentionOperator.OpName, Domain = OperatorRegistry.Domain, Name = hint + ".LinearAttention" };
        node.Input.AddRange([q, k, v, state.Past, normalizer.Past]);
        node.Output.AddRange([y, state.Present, normalizer.Present]);
        node.Attribute.AddRange(
        [
            Attr.Int(LinearAttentionAttributes.QNumHeads.Name, m.QueryHeads),
            Attr.Int(LinearAttentionAttributes.KvNumHeads.Name, m.KvHeads),
            Attr.String(LinearAttentionAttributes.FeatureMapAttr.Name, rule.FeatureMap),
            Attr.Int(LinearAttentionAttributes.NormalizeAttr.Name, 1),
            Attr.Float(LinearAttentionAttributes.EpsilonAttr.Name, Epsilon),
            Attr.Float(LinearAttentionAttributes.ScaleAttr.Name, 1f),
        ]);
        graph.Add(node);
        graph.ReplaceUses(m.Output, PackedLayout.ToLayout(graph, y, m.OutputLayout, m.QueryHeads, m.ValueHeadDim, hint + ".y"));
        return [state, normalizer];
    }
}
