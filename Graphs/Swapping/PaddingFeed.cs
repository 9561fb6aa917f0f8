using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// What our operators read from a model's attention_mask [batch, past + S] (1 a token, 0 padding), made once per
/// model and shared by every layer: the mask as the operators' int64 <c>token_mask</c> (they read its last S
/// columns), and each row's real tokens before this call, which is where the row's memory stands (a pad is no part
/// of any state, so a row's position counts its real tokens, not the padded length).
/// </summary>
internal static class PaddingFeed
{
    /// <summary>ReduceSum with axes as an input (opset 13).</summary>
    public const int Opset = 13;

    /// <summary>The int64 mask for <see cref="AttentionInputs.TokenMaskName"/>.</summary>
    public static string TokenMask(Graph g, string attentionMask)
    {
        var name = attentionMask + "." + AttentionInputs.TokenMaskName;
        if (g.Producer(name) is null)
        {
            g.Add(GraphEdits.Node("Cast", [attentionMask], name, Attr.Int("to", (long)Onnx.TensorProto.Types.DataType.Int64)));
        }
        return name;
    }

    /// <summary>int64 [batch]: the real tokens of each row before this call (the mask's sum less that of its last S columns).</summary>
    public static string RealTokensBefore(Graph g, string attentionMask, string packedQuery)
    {
        var name = attentionMask + ".real_tokens_before";
        if (g.Producer(name) is not null) return name;
        var mask = TokenMask(g, attentionMask);
        var length = g.FreshName(name + ".sequence");
        g.Add(GraphEdits.Node("Shape", [packedQuery], length, Attr.Int("start", 1), Attr.Int("end", 2)));
        var fromEnd = g.FreshName(name + ".from_end");
        g.Add(GraphEdits.Node("Neg", [length], fromEnd));
        var current = g.FreshName(name + ".current");
        g.Add(GraphEdits.Node("Slice", [mask, fromEnd, g.AddInt64Constant(name + ".end", long.MaxValue), g.AddInt64Constant(name + ".axis", 1)], current));
        var axes = g.AddInt64Constant(name + ".axes", 1);
        var all = g.FreshName(name + ".all");
        g.Add(GraphEdits.Node("ReduceSum", [mask, axes], all, Attr.Int("keepdims", 0)));
        var now = g.FreshName(name + ".now");
        g.Add(GraphEdits.Node("ReduceSum", [current, axes], now, Attr.Int("keepdims", 0)));
        g.Add(GraphEdits.Node("Sub", [all, now], name));
        return name;
    }
}
