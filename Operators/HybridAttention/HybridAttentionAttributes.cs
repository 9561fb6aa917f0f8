using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.HybridAttention;

/// <summary>A HybridAttention node's attributes, read once at kernel creation and checked for sense.</summary>
public sealed record HybridAttentionAttributes(HeadAttributes Heads, int Window, CompressKind Compress, float Epsilon, int Projections = 0)
{
    /// <summary>Largest number of Hedgehog projections m (2m features).</summary>
    public const int MaxProjections = 4096;

    /// <summary>Largest window (ring buffer rows per batch and KV head).</summary>
    public const int MaxWindow = 1 << 24;

    public static readonly AttributeSpec WindowAttr = new("window", AttributeKind.Int, null,
        "W >= 1: the latest W tokens (the current one included) get exact softmax attention");
    public static readonly AttributeSpec CompressAttr = new("compress", AttributeKind.String, "linear",
        "how tokens that left the window are kept: linear (normalised linear attention state), mean (one extra slot) or hedgehog "
        + "(linear attention on learned features sharing the window's normaliser; needs the feature_* and mix inputs)");
    public static readonly AttributeSpec EpsilonAttr = new("epsilon", AttributeKind.Float, 1e-6f,
        "compress=linear: added to the linear part's normaliser phi(q).nu; compress=hedgehog: to the shared normaliser");
    public static readonly AttributeSpec ProjectionsAttr = new("projections", AttributeKind.Int, 0L,
        "compress=hedgehog: m, the outputs of each learned projection (2m features); 0 otherwise");

    public static IReadOnlyList<AttributeSpec> All { get; } =
        [HeadAttributes.QNumHeads, HeadAttributes.KvNumHeads, HeadAttributes.ScaleAttr, WindowAttr, CompressAttr, EpsilonAttr, ProjectionsAttr];

    /// <summary>Features of the linear memory: head_dim (linear, mean's key sum) or 2m (hedgehog).</summary>
    public int CompressedKeyDim(int headDim) => Compress == CompressKind.Hedgehog ? 2 * Projections : headDim;

    /// <summary>Rows of the compressed value state: mu is [features, v_head_dim] for linear and hedgehog, the value sum one row for mean.</summary>
    public int CompressedValueRows(int headDim) => Compress == CompressKind.Mean ? 1 : CompressedKeyDim(headDim);

    internal static HybridAttentionAttributes Read(in KernelInfo info)
    {
        var heads = HeadAttributes.Read(info);
        var name = info.GetString(CompressAttr);
        if (!CompressKinds.ByName.TryGetValue(name, out var kind))
        {
            throw OrtException.InvalidArgument(
                $"unknown compress '{name}'; expected one of: {string.Join(", ", CompressKinds.ByName.Keys)}");
        }
        return Validate(heads, info.GetInt(WindowAttr), kind, info.GetFloat(EpsilonAttr), info.GetInt(ProjectionsAttr));
    }

    public static HybridAttentionAttributes Validate(HeadAttributes heads, long window, CompressKind compress, float epsilon, long projections = 0)
    {
        if (compress == CompressKind.Hedgehog ? projections is < 1 or > MaxProjections : projections != 0)
        {
            throw OrtException.InvalidArgument(compress == CompressKind.Hedgehog
                ? $"projections must be in [1, {MaxProjections}] for compress=hedgehog, got {projections}"
                : $"projections is for compress=hedgehog only; compress={CompressKinds.NameOf(compress)} takes 0, got {projections}");
        }
        if (window <= 0 || window > MaxWindow)
        {
            throw OrtException.InvalidArgument($"window must be in [1, {MaxWindow}], got {window}");
        }
        if (!float.IsFinite(epsilon) || epsilon < 0)
        {
            throw OrtException.InvalidArgument($"epsilon must be finite and non-negative, got {epsilon}");
        }
        return new HybridAttentionAttributes(heads, (int)window, compress, epsilon, (int)projections);
    }
}
