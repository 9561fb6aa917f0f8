using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.Registration;

namespace OnnxAttention.Graphs.Building;

/// <summary>Adds <c>com.onnxattention.LinearAttention</c> nodes, spelling the attributes as the operator reads them.</summary>
public static class LinearAttentionNode
{
    /// <param name="UpdateRule">linear, gated, delta or gated_delta.</param>
    /// <param name="Decay">The fixed decay factor gamma (attribute <c>decay</c>), in (0, 1].</param>
    public sealed record Options(
        int QueryHeads,
        int KvHeads = 0,
        string FeatureMap = "elu_plus_one",
        bool Normalize = true,
        float Epsilon = 1e-6f,
        float Scale = 1f,
        string UpdateRule = "linear",
        float Decay = 1f);

    /// <summary>
    /// Inputs past_state/past_normalizer may be "" (start from zeros); decay (the log-space gate input) and beta
    /// are given only for the update rules that use them.
    /// </summary>
    public static ModelBuilder LinearAttention(this ModelBuilder builder, Options o,
        string query, string key, string value, string pastState, string pastNormalizer,
        string output, string presentState, string presentNormalizer, string? name = null,
        string decay = "", string beta = "")
    {
        builder.Opset(OperatorRegistry.Domain, 1);
        var inputs = new List<string> { query, key, value, pastState, pastNormalizer, decay, beta };
        // Trailing absent optional inputs are dropped rather than written as "".
        while (inputs.Count > 3 && inputs[^1].Length == 0)
        {
            inputs.RemoveAt(inputs.Count - 1);
        }
        AttributeProto[] attributes =
        [
            Attr.Int(LinearAttentionAttributes.QNumHeads.Name, o.QueryHeads),
            Attr.Int(LinearAttentionAttributes.KvNumHeads.Name, o.KvHeads),
            Attr.String(LinearAttentionAttributes.FeatureMapAttr.Name, o.FeatureMap),
            Attr.Int(LinearAttentionAttributes.NormalizeAttr.Name, o.Normalize ? 1 : 0),
            Attr.Float(LinearAttentionAttributes.EpsilonAttr.Name, o.Epsilon),
            Attr.Float(LinearAttentionAttributes.ScaleAttr.Name, o.Scale),
            Attr.String(LinearAttentionAttributes.UpdateRuleAttr.Name, o.UpdateRule),
            Attr.Float(LinearAttentionAttributes.DecayAttr.Name, o.Decay),
        ];
        return builder.Node(LinearAttentionOperator.OpName, inputs, [output, presentState, presentNormalizer],
            OperatorRegistry.Domain, name, attributes);
    }
}
