using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Any fixed-state rule with its state kept in a narrower type between calls (spelled <c>RULE,state=TYPE</c>, e.g.
/// <c>window:16,state=float16</c>). float16 and bfloat16: every state in 16 bits, half the bytes. int8: the caches that
/// hold keys and values token by token (window, segment, a hybrid's or summary's window) as int8 vectors with one
/// float16 scale each (2 * kv_heads * (head_dim + 2) bytes per cached token per layer), and accumulated memories (linear
/// sums, normalisers, summaries) in float16 (<see cref="AccumulatorType"/>). The operator still computes in float32
/// within a call; keys and values are rounded to what the state stores before it, so a cache holds exactly the keys and
/// values a single call saw (see <see cref="StateTypeReplacement"/>).
/// </summary>
public sealed record StateTypeRule(AttentionRule Inner, TensorProto.Types.DataType StateType) : AttentionRule
{
    public const string Option = "state=";

    /// <summary>The state types by their spelling, float32 (the rule itself) first.</summary>
    public static IReadOnlyList<(string Name, TensorProto.Types.DataType Type)> Types { get; } =
    [
        ("float32", TensorProto.Types.DataType.Float),
        ("float16", TensorProto.Types.DataType.Float16),
        ("bfloat16", TensorProto.Types.DataType.Bfloat16),
        ("int8", TensorProto.Types.DataType.Int8),
    ];

    /// <summary>The spellings, for messages: "float32, float16, bfloat16 or int8".</summary>
    public static string Expected => string.Join(", ", Types.Take(Types.Count - 1).Select(t => t.Name)) + " or " + Types[^1].Name;

    /// <summary>The type of an int8 rule's per-vector scales: one float16 per key or value vector.</summary>
    public const TensorProto.Types.DataType ScaleType = TensorProto.Types.DataType.Float16;

    /// <summary>The largest int8 code: symmetric, so -x is coded as -q (and -128 is never used).</summary>
    public const float Int8Levels = 127f;

    /// <summary>
    /// The smallest int8 scale: float16's smallest normal number. A subnormal scale would lose bits, and then
    /// requantising a dequantised vector could give another scale.
    /// </summary>
    public const float SmallestScale = 1f / 16384f;

    /// <summary>The largest int8 scale: float16's largest finite number (larger values saturate at code 127).</summary>
    public const float LargestScale = 65504f;

    /// <summary>
    /// One key or value vector as a state=int8 rule stores and gives it back, in place: s = float16(clip(max|x| / 127,
    /// <see cref="SmallestScale"/>, <see cref="LargestScale"/>)), x = clip(round(x / s), -127, 127) * s, in float32 with
    /// ties to even as ONNX's Round and Cast (the swap builds the same from ONNX operators; the training side calls this).
    /// </summary>
    public static void RoundToInt8(Span<float> vector)
    {
        var max = 0f;
        foreach (var x in vector) max = MathF.Max(max, MathF.Abs(x));
        var scale = (float)(Half)Math.Clamp(max / Int8Levels, SmallestScale, LargestScale);
        for (var i = 0; i < vector.Length; i++) vector[i] = Math.Clamp(MathF.Round(vector[i] / scale), -Int8Levels, Int8Levels) * scale;
    }

    /// <summary>
    /// The type a state that accumulates (rather than copies keys and values) is kept in: float16 under an int8 rule,
    /// where a per-vector int8 code would requantise a changing sum at every call; the state type otherwise.
    /// </summary>
    public static TensorProto.Types.DataType AccumulatorType(TensorProto.Types.DataType type) =>
        type == TensorProto.Types.DataType.Int8 ? TensorProto.Types.DataType.Float16 : type;

    internal override IAttentionReplacement CreateReplacement() => new StateTypeReplacement(Inner.CreateReplacement(), StateType);

    public override string Spelling => $"{Inner.Spelling},{Option}{Name(StateType)}";

    /// <summary>The spelling of a state type: float32, float16, bfloat16 or int8.</summary>
    public static string Name(TensorProto.Types.DataType type) =>
        Types.FirstOrDefault(t => t.Type == type).Name ?? throw new ArgumentException($"{type} is not a state type");

    /// <summary>The state type spelled <paramref name="name"/> (lower case), or a message naming the spellings.</summary>
    public static TensorProto.Types.DataType FromName(string name, string context) =>
        Types.FirstOrDefault(t => t.Name == name) is { Name: not null } t ? t.Type
            : throw new FormatException($"unknown state type '{name}' in '{context}'; expected state={Expected.Replace(", ", ", state=", StringComparison.Ordinal).Replace(" or ", " or state=", StringComparison.Ordinal)}");

    /// <summary>
    /// Why <paramref name="rule"/> cannot keep its state in <paramref name="type"/>, or null when it can: softmax keeps the
    /// model's growing KV cache, a per-layer rule takes state= per layer, and int8 needs a cache of keys and values
    /// (linear attention and the cumulative and ema summaries hold only sums).
    /// </summary>
    public static string? Refusal(AttentionRule rule, TensorProto.Types.DataType type) => rule switch
    {
        _ when type == TensorProto.Types.DataType.Float => null,
        _ when !Types.Any(t => t.Type == type) => $"state type {type} is not {Expected}",
        StateTypeRule s => Refusal(s.Inner, type),
        SoftmaxRule => "softmax keeps the model's own growing KV cache; state= applies to the fixed-size state of the other rules",
        LayeredRule => "give state= to each layer's rule (RULE,state=float16@LAYERS), not to a per-layer rule",
        RecomputedWindowRule => $"{rule.Spelling} keeps token ids, not keys and values; it takes no state=",
        LinearRule or FittedLinearRule or SummaryRule { Kind: not "moving" } when type == TensorProto.Types.DataType.Int8 =>
            $"{rule.Spelling} keeps no cache of keys and values, only sums; state=int8 quantises cached keys and values (window, segment, hybrid, summary:moving); use state=float16",
        _ => null,
    };

    /// <summary><paramref name="rule"/> with its state in <paramref name="type"/>; float32 is the rule itself. Refused as <see cref="Refusal"/> says.</summary>
    public static AttentionRule Of(AttentionRule rule, TensorProto.Types.DataType type) =>
        Refusal(rule, type) is { } why ? throw new FormatException(why)
        : type == TensorProto.Types.DataType.Float ? rule
        : new StateTypeRule(rule is StateTypeRule s ? s.Inner : rule, type);

    /// <summary>
    /// Splits a rule's spelling (one layer's, lower case) into the rule without its <c>state=</c> option and the state
    /// type it names (float32 when it names none).
    /// </summary>
    public static (string Rule, TensorProto.Types.DataType Type) Split(string s, string text)
    {
        var parts = s.Split(',');
        var options = parts.Where(p => p.Trim().StartsWith(Option, StringComparison.Ordinal)).ToList();
        if (options.Count == 0) return (s, TensorProto.Types.DataType.Float);
        if (options.Count > 1) throw new FormatException($"'{text}' names the state type twice");
        var type = FromName(options[0].Trim()[Option.Length..], text);
        var rest = string.Join(',', parts.Where(p => !p.Trim().StartsWith(Option, StringComparison.Ordinal)));
        return rest.Trim().Length > 0 ? (rest, type) : throw new FormatException($"'{text}' gives a state type but no rule");
    }
}
