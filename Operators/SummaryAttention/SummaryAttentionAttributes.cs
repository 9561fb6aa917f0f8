using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.SummaryAttention;

/// <summary>A SummaryAttention node's attributes, read once at kernel creation and checked for sense.</summary>
public sealed record SummaryAttentionAttributes(HeadAttributes Heads, SummaryKind Kind, int Window, float Alpha, int NumSlots)
{
    /// <summary>Largest ring buffer a moving summary may keep, per (batch, KV head).</summary>
    public const int MaxWindow = 1 << 24;

    /// <summary>Most EMA slots; slot s averages over roughly 2^s times the horizon of slot 0.</summary>
    public const int MaxSlots = 16;

    public static readonly AttributeSpec SummaryAttr = new("summary", AttributeKind.String, "cumulative",
        "how summaries are kept: cumulative (running mean), moving (mean of the last window tokens) or ema");
    public static readonly AttributeSpec WindowAttr = new("window", AttributeKind.Int, 0L,
        "summary=moving: the number M of latest tokens averaged (M >= 1); must be 0 (unset) for the other kinds");
    public static readonly AttributeSpec AlphaAttr = new("alpha", AttributeKind.Float, 0.9f,
        "summary=ema: decay a in [0, 1): ema_i = a ema_{i-1} + (1 - a) x_i, bias-corrected");
    public static readonly AttributeSpec NumSlotsAttr = new("num_slots", AttributeKind.Int, 1L,
        "summary=ema: number of EMA slots; slot s decays with alpha^(2^-s). Must be 1 for the other kinds");

    public static IReadOnlyList<AttributeSpec> All { get; } =
        [HeadAttributes.QNumHeads, HeadAttributes.KvNumHeads, HeadAttributes.ScaleAttr, SummaryAttr, WindowAttr, AlphaAttr, NumSlotsAttr];

    /// <summary>Rows of the summary state: one per EMA slot, else one.</summary>
    public int SummaryRows => NumSlots;

    /// <summary>Rows of the ring buffer: the window for a moving summary, 0 for the others.</summary>
    public int WindowRows => Kind == SummaryKind.Moving ? Window : 0;

    /// <summary>Decay of EMA slot s: alpha^(2^-s), so each slot's horizon 1/(1-a) roughly doubles the previous one's.</summary>
    public double SlotAlpha(int slot) => Math.Pow(Alpha, Math.Pow(2, -slot));

    internal static SummaryAttentionAttributes Read(in KernelInfo info)
    {
        var heads = HeadAttributes.Read(info);
        var name = info.GetString(SummaryAttr);
        if (!SummaryKinds.ByName.TryGetValue(name, out var kind))
        {
            throw OrtException.InvalidArgument(
                $"unknown summary '{name}'; expected one of: {string.Join(", ", SummaryKinds.ByName.Keys)}");
        }
        return Validate(heads, kind, info.GetInt(WindowAttr), info.GetFloat(AlphaAttr), info.GetInt(NumSlotsAttr));
    }

    public static SummaryAttentionAttributes Validate(HeadAttributes heads, SummaryKind kind, long window, float alpha, long numSlots)
    {
        if (kind == SummaryKind.Moving)
        {
            if (window <= 0 || window > MaxWindow)
            {
                throw OrtException.InvalidArgument($"window must be in [1, {MaxWindow}] for summary=moving, got {window}");
            }
        }
        else if (window != 0)
        {
            throw OrtException.InvalidArgument(
                $"window is used only by summary=moving; got window={window} with summary={SummaryKinds.NameOf(kind)}");
        }
        if (!(alpha >= 0f && alpha < 1f))
        {
            throw OrtException.InvalidArgument($"alpha must be in [0, 1), got {alpha}");
        }
        if (numSlots < 1 || numSlots > MaxSlots)
        {
            throw OrtException.InvalidArgument($"num_slots must be in [1, {MaxSlots}], got {numSlots}");
        }
        if (numSlots != 1 && kind != SummaryKind.Ema)
        {
            throw OrtException.InvalidArgument(
                $"num_slots > 1 needs summary=ema (multi-scale EMA); got num_slots={numSlots} with summary={SummaryKinds.NameOf(kind)}");
        }
        return new SummaryAttentionAttributes(heads, kind, (int)window, alpha, (int)numSlots);
    }
}
