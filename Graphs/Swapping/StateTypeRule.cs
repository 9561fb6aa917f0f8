using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Any fixed-state rule with its state kept in float16 or bfloat16 between calls (spelled <c>RULE,state=float16</c>,
/// e.g. <c>window:16,state=float16</c>): half the bytes. The operator still computes in float32 within a call; the
/// keys and values are rounded to the state type before it, so a window's cache holds exactly the keys and values a
/// single call saw (see <see cref="StateTypeReplacement"/>).
/// </summary>
public sealed record StateTypeRule(AttentionRule Inner, TensorProto.Types.DataType StateType) : AttentionRule
{
    public const string Option = "state=";

    internal override IAttentionReplacement CreateReplacement() => new StateTypeReplacement(Inner.CreateReplacement(), StateType);

    public override string Spelling => $"{Inner.Spelling},{Option}{Name(StateType)}";

    /// <summary>The spelling of a state type: float16 or bfloat16.</summary>
    public static string Name(TensorProto.Types.DataType type) => type switch
    {
        TensorProto.Types.DataType.Float16 => "float16",
        TensorProto.Types.DataType.Bfloat16 => "bfloat16",
        _ => "float32",
    };

    /// <summary>
    /// <paramref name="rule"/> with its state in <paramref name="type"/>; float32 is the rule itself. Refused for a
    /// rule whose memory is not a fixed-size state of our operators (softmax's growing KV cache, a per-layer rule).
    /// </summary>
    public static AttentionRule Of(AttentionRule rule, TensorProto.Types.DataType type) => rule switch
    {
        _ when type == TensorProto.Types.DataType.Float => rule,
        StateTypeRule s => Of(s.Inner, type),
        SoftmaxRule => throw new FormatException("softmax keeps the model's own growing KV cache; state=float16|bfloat16 applies to the fixed-size state of the other rules"),
        LayeredRule => throw new FormatException("give state= to each layer's rule (RULE,state=float16@LAYERS), not to a per-layer rule"),
        _ when type is TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16 => new StateTypeRule(rule, type),
        _ => throw new FormatException($"state type {type} is not float32, float16 or bfloat16"),
    };

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
        var type = options[0].Trim()[Option.Length..] switch
        {
            "float32" => TensorProto.Types.DataType.Float,
            "float16" => TensorProto.Types.DataType.Float16,
            "bfloat16" => TensorProto.Types.DataType.Bfloat16,
            var other => throw new FormatException($"unknown state type '{other}' in '{text}'; expected state=float32, state=float16 or state=bfloat16"),
        };
        var rest = string.Join(',', parts.Where(p => !p.Trim().StartsWith(Option, StringComparison.Ordinal)));
        return rest.Trim().Length > 0 ? (rest, type) : throw new FormatException($"'{text}' gives a state type but no rule");
    }
}
