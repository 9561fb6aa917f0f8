using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.SegmentAttention;

/// <summary>A SegmentAttention node's attributes, read once at kernel creation and checked for sense.</summary>
public sealed record SegmentAttentionAttributes(HeadAttributes Heads, int SegmentLength)
{
    /// <summary>Largest segment length (cache rows per batch, KV head and segment buffer).</summary>
    public const int MaxSegmentLength = 1 << 24;

    public static readonly AttributeSpec SegmentLengthAttr = new("segment_length", AttributeKind.Int, null,
        "L >= 1: tokens per segment; a token attends to the whole previous segment and causally to its own");

    public static IReadOnlyList<AttributeSpec> All { get; } =
        [HeadAttributes.QNumHeads, HeadAttributes.KvNumHeads, HeadAttributes.ScaleAttr, SegmentLengthAttr];

    internal static SegmentAttentionAttributes Read(in KernelInfo info) =>
        Validate(HeadAttributes.Read(info), info.GetInt(SegmentLengthAttr));

    public static SegmentAttentionAttributes Validate(HeadAttributes heads, long segmentLength)
    {
        if (segmentLength <= 0 || segmentLength > MaxSegmentLength)
        {
            throw OrtException.InvalidArgument($"segment_length must be in [1, {MaxSegmentLength}], got {segmentLength}");
        }
        return new SegmentAttentionAttributes(heads, (int)segmentLength);
    }
}
