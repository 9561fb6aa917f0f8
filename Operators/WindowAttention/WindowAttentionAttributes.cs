using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.WindowAttention;

/// <summary>A WindowAttention node's attributes, read once at kernel creation and checked for sense.</summary>
public sealed record WindowAttentionAttributes(HeadAttributes Heads, int Window, int Sinks, float Softcap)
{
    /// <summary>Largest window, and separately the most sinks (cache rows per batch row and KV head: sinks + window).</summary>
    public const int MaxWindow = 1 << 24;

    public static readonly AttributeSpec WindowAttr = new("window", AttributeKind.Int, null,
        "W >= 1: the query at position p attends to the keys at positions j with p - W < j <= p");
    public static readonly AttributeSpec SinksAttr = new("sinks", AttributeKind.Int, 0L,
        "S >= 0: positions 0 .. S-1 of the stream stay in the cache for good and are always attended (attention sinks)");
    public static readonly AttributeSpec SoftcapAttr = new("softcap", AttributeKind.Float, 0f,
        "c > 0 caps every score s (after scale) to c * tanh(s / c) before the softmax; 0 turns it off");

    public static IReadOnlyList<AttributeSpec> All { get; } =
        [HeadAttributes.QNumHeads, HeadAttributes.KvNumHeads, HeadAttributes.ScaleAttr, WindowAttr, SinksAttr, SoftcapAttr];

    /// <summary>Rows of the KV cache per batch row and KV head: the sink rows, then the ring buffer.</summary>
    public int CacheRows => Sinks + Window;

    internal static WindowAttentionAttributes Read(in KernelInfo info) => Validate(HeadAttributes.Read(info),
        info.GetInt(WindowAttr), info.GetInt(SinksAttr), info.GetFloat(SoftcapAttr));

    public static WindowAttentionAttributes Validate(HeadAttributes heads, long window, long sinks, float softcap)
    {
        if (window <= 0 || window > MaxWindow)
        {
            throw OrtException.InvalidArgument($"window must be in [1, {MaxWindow}], got {window}");
        }
        if (sinks < 0 || sinks > MaxWindow)
        {
            throw OrtException.InvalidArgument($"sinks must be in [0, {MaxWindow}], got {sinks}");
        }
        if (!float.IsFinite(softcap) || softcap < 0)
        {
            throw OrtException.InvalidArgument($"softcap must be finite and non-negative (0 = off), got {softcap}");
        }
        return new WindowAttentionAttributes(heads, (int)window, (int)sinks, softcap);
    }
}
