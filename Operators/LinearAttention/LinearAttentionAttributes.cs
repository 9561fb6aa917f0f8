using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.LinearAttention;

/// <summary>A LinearAttention node's attributes, read once at kernel creation and checked for sense.</summary>
public sealed record LinearAttentionAttributes(
    int QueryHeads,
    int KvHeads,
    FeatureMap FeatureMap,
    bool Normalize,
    float Epsilon,
    float Scale,
    UpdateRule UpdateRule = UpdateRule.Linear,
    float Decay = 1f)
{
    public static readonly AttributeSpec QNumHeads = new("q_num_heads", AttributeKind.Int, null,
        "number of query heads; the query's last dimension is q_num_heads * d_k");
    public static readonly AttributeSpec KvNumHeads = new("kv_num_heads", AttributeKind.Int, 0L,
        "number of key/value heads (grouped-query attention); 0 means q_num_heads. Must divide q_num_heads");
    public static readonly AttributeSpec FeatureMapAttr = new("feature_map", AttributeKind.String, "elu_plus_one",
        "phi applied to queries and keys: elu_plus_one, relu, identity, squared_relu or l2norm");
    public static readonly AttributeSpec NormalizeAttr = new("normalize", AttributeKind.Int, 1L,
        "1: divide by phi(q).nu + epsilon; 0: plain phi(q) S");
    public static readonly AttributeSpec EpsilonAttr = new("epsilon", AttributeKind.Float, 1e-6f,
        "added to the normaliser's denominator");
    public static readonly AttributeSpec ScaleAttr = new("scale", AttributeKind.Float, 1.0f,
        "queries are multiplied by scale before the feature map (after it for l2norm); 0 means 1/sqrt(d_k)");
    public static readonly AttributeSpec UpdateRuleAttr = new("update_rule", AttributeKind.String, "linear",
        "how each token writes the state: linear, gated (needs input decay), delta (needs input beta) or gated_delta (needs both)");
    public static readonly AttributeSpec DecayAttr = new("decay", AttributeKind.Float, 1.0f,
        "fixed factor gamma in (0, 1] multiplying the state and the normaliser before every token's write (RetNet-style); "
        + "composes with the decay input by multiplication");

    public static IReadOnlyList<AttributeSpec> All { get; } =
        [QNumHeads, KvNumHeads, FeatureMapAttr, NormalizeAttr, EpsilonAttr, ScaleAttr, UpdateRuleAttr, DecayAttr];

    public int GroupSize => QueryHeads / KvHeads;

    /// <summary>The query scale for head dimension <paramref name="headDim"/>: the attribute, or 1/sqrt(d_k) when it is 0.</summary>
    public float ScaleFor(int headDim) => Scale == 0f ? 1f / MathF.Sqrt(headDim) : Scale;

    internal static LinearAttentionAttributes Read(in KernelInfo info)
    {
        var qHeads = info.GetInt(QNumHeads);
        var kvHeads = info.GetInt(KvNumHeads);
        if (kvHeads == 0)
        {
            kvHeads = qHeads;
        }
        var mapName = info.GetString(FeatureMapAttr);
        if (!FeatureMaps.ByName.TryGetValue(mapName, out var map))
        {
            throw OrtException.InvalidArgument(
                $"unknown feature_map '{mapName}'; expected one of: {string.Join(", ", FeatureMaps.ByName.Keys)}");
        }
        var ruleName = info.GetString(UpdateRuleAttr);
        if (!UpdateRules.ByName.TryGetValue(ruleName, out var rule))
        {
            throw OrtException.InvalidArgument(
                $"unknown update_rule '{ruleName}'; expected one of: {string.Join(", ", UpdateRules.ByName.Keys)}");
        }
        var normalize = info.GetInt(NormalizeAttr);
        var epsilon = info.GetFloat(EpsilonAttr);
        var scale = info.GetFloat(ScaleAttr);
        var decay = info.GetFloat(DecayAttr);
        return Validate(qHeads, kvHeads, map, normalize, epsilon, scale, rule, decay);
    }

    public static LinearAttentionAttributes Validate(long qHeads, long kvHeads, FeatureMap map, long normalize, float epsilon, float scale) =>
        Validate(qHeads, kvHeads, map, normalize, epsilon, scale, UpdateRule.Linear, 1f);

    public static LinearAttentionAttributes Validate(long qHeads, long kvHeads, FeatureMap map, long normalize, float epsilon, float scale,
        UpdateRule rule, float decay)
    {
        if (qHeads <= 0 || qHeads > 65536)
        {
            throw OrtException.InvalidArgument($"q_num_heads must be in [1, 65536], got {qHeads}");
        }
        if (kvHeads <= 0 || kvHeads > qHeads || qHeads % kvHeads != 0)
        {
            throw OrtException.InvalidArgument(
                $"kv_num_heads must be positive and divide q_num_heads ({qHeads}), got {kvHeads}");
        }
        if (normalize is not (0 or 1))
        {
            throw OrtException.InvalidArgument($"normalize must be 0 or 1, got {normalize}");
        }
        if (!float.IsFinite(epsilon) || epsilon < 0)
        {
            throw OrtException.InvalidArgument($"epsilon must be finite and non-negative, got {epsilon}");
        }
        if (!float.IsFinite(scale))
        {
            throw OrtException.InvalidArgument($"scale must be finite, got {scale}");
        }
        if (!(decay > 0f && decay <= 1f))
        {
            throw OrtException.InvalidArgument($"decay (the fixed factor gamma) must be in (0, 1], got {decay}");
        }
        if (!Enum.IsDefined(rule))
        {
            throw OrtException.InvalidArgument($"unknown update_rule {rule}");
        }
        return new LinearAttentionAttributes((int)qHeads, (int)kvHeads, map, normalize == 1, epsilon, scale, rule, decay);
    }
}
