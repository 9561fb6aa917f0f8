using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.HybridAttention;

/// <summary>A HybridAttention node's attributes, read once at kernel creation and checked for sense.</summary>
public sealed record HybridAttentionAttributes(HeadAttributes Heads, int Window, CompressKind Compress, float Epsilon)
{
    /// <summary>Largest window (ring buffer rows per batch and KV head).</summary>
    public const int MaxWindow = 1 << 24;

    public static readonly AttributeSpec WindowAttr = new("window", AttributeKind.Int, null,
        "W >= 1: the latest W tokens (the current one included) get exact softmax attention");
    public static readonly AttributeSpec CompressAttr = new("compress", AttributeKind.String, "linear",
        "how tokens that left the window are kept: linear (normalised linear attention state) or mean (one extra slot)");
    public static readonly AttributeSpec EpsilonAttr = new("epsilon", AttributeKind.Float, 1e-6f,
        "compress=linear: added to the linear part's normaliser phi(q).nu");

    public static IReadOnlyList<AttributeSpec> All { get; } =
        [HeadAttributes.QNumHeads, HeadAttributes.KvNumHeads, HeadAttributes.ScaleAttr, WindowAttr, CompressAttr, EpsilonAttr];

    /// <summary>Rows of the compressed value state: mu is [head_dim, v_head_dim] for linear, the value sum one row for mean.</summary>
    public int CompressedValueRows(int headDim) => Compress == CompressKind.Linear ? headDim : 1;

    internal static HybridAttentionAttributes Read(in KernelInfo info)
    {
        var heads = HeadAttributes.Read(info);
        var name = info.GetString(CompressAttr);
        if (!CompressKinds.ByName.TryGetValue(name, out var kind))
        {
            throw OrtException.InvalidArgument(
                $"unknown compress '{name}'; expected one of: {string.Join(", ", CompressKinds.ByName.Keys)}");
        }
        return Validate(heads, info.GetInt(WindowAttr), kind, info.GetFloat(EpsilonAttr));
    }

    public static HybridAttentionAttributes Validate(HeadAttributes heads, long window, CompressKind compress, float epsilon)
    {
        if (window <= 0 || window > MaxWindow)
        {
            throw OrtException.InvalidArgument($"window must be in [1, {MaxWindow}], got {window}");
        }
        if (!float.IsFinite(epsilon) || epsilon < 0)
        {
            throw OrtException.InvalidArgument($"epsilon must be finite and non-negative, got {epsilon}");
        }
        return new HybridAttentionAttributes(heads, (int)window, compress, epsilon);
    }
}
