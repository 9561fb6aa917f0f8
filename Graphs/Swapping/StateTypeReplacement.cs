using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Keeps another replacement's state in a narrower type between calls: each past is widened to float32 before the
/// operator and each present narrowed after it, so the operators (whose state is float32) run unchanged. float16 and
/// bfloat16 are Casts. int8 stores each key or value vector of a cache (<see cref="StateTensor.TokenRows"/>) as
/// int8 codes q = clip(round(x / s), -127, 127) with s = float16(clip(max|x| / 127, 2^-14, 65504)), one scale per
/// vector in its own state (<c>PAST.scale</c>), and keeps accumulated memories in float16.
/// Keys and values are rounded to what the state stores before the operator, so a cache stores exactly what a call
/// saw and a sequence fed whole, token by token or in pieces sees the same keys; for int8 this needs requantising a
/// dequantised vector to give it back unchanged, which holds because the scale is a float16 number s with
/// max|q s| = 127 s, so max / 127 gives s again (or the floor 2^-14 again below it) and q s / s gives q.
/// An accumulated memory (linear attention's sums) is rounded once per call, so it drifts slightly with the call pattern.
/// </summary>
internal sealed class StateTypeReplacement(IAttentionReplacement inner, TensorProto.Types.DataType stateType) : IAttentionReplacement
{
    private const float Levels = StateTypeRule.Int8Levels, SmallestScale = StateTypeRule.SmallestScale, LargestScale = StateTypeRule.LargestScale;

    /// <summary>The suffix of an int8 cache's scale state after its past and present names.</summary>
    public const string ScaleSuffix = ".scale";

    private bool Int8 => stateType == TensorProto.Types.DataType.Int8;

    public string? Refusal(AttentionMatch match) => inner.Refusal(match)
        ?? (Int8 && match.ElementType != TensorProto.Types.DataType.Float
            ? $"state=int8 needs float32 keys and values (this attention's are {match.ElementType}): their dequantised values are not exact in a narrower type"
            : null);

    /// <summary>Cast to bfloat16 is opset 13; int8's ReduceMax takes its axes as an input from opset 18.</summary>
    public int RequiredOpset(AttentionMatch match) =>
        Math.Max(inner.RequiredOpset(match), stateType switch { TensorProto.Types.DataType.Bfloat16 => 13, TensorProto.Types.DataType.Int8 => 18, _ => 0 });

    public IReadOnlyList<StateTensor> Replace(Graph graph, AttentionMatch m, int layer, Dim batch)
    {
        var hint = $"layers.{layer}.attention";
        var rounded = Int8
            ? m with { Key = RoundVectors(graph, m.Key, m.KeyLayout, m.HeadDim, $"{hint}.k_rounded"), Value = RoundVectors(graph, m.Value, m.ValueLayout, m.ValueHeadDim, $"{hint}.v_rounded") }
            : m with { Key = Round(graph, m.Key, m.ElementType, $"{hint}.k_rounded"), Value = Round(graph, m.Value, m.ElementType, $"{hint}.v_rounded") };
        var states = inner.Replace(graph, rounded, layer, batch);
        if (Int8 && !states.Any(s => s.TokenRows && s.Shape[^2].Value is > 0))
        {
            throw new GraphException($"layer {layer}'s rule keeps no cache of keys and values, so state=int8 has nothing to quantise; use state=float16");
        }
        var stored = new List<StateTensor>();
        foreach (var s in states)
        {
            if (s.GrowingAxis is not null || s.ElementType != TensorProto.Types.DataType.Float)
            {
                throw new GraphException($"state '{s.Past}' is not a fixed-size float32 state, so it cannot be kept in {StateTypeRule.Name(stateType)}");
            }
            var wide = graph.FreshName(s.Past + ".float");
            graph.ReplaceUses(s.Past, wide);
            var producer = graph.Producer(s.Present) ?? throw new GraphException($"state '{s.Present}' has no producer");
            var computed = graph.FreshName(s.Present + ".float");
            for (var i = 0; i < producer.Outputs.Count; i++)
            {
                if (producer.Outputs[i] == s.Present) producer.Outputs[i] = computed;
            }
            graph.Invalidate();
            // Two Casts stand between the buffers and the operator, so the past and present are separate buffers.
            if (Int8 && s.TokenRows)
            {
                var scale = new StateTensor(s.Past + ScaleSuffix, s.Present + ScaleSuffix, StateTypeRule.ScaleType, [.. s.Shape[..^1], 1]);
                graph.Add(GraphEdits.Node("Mul", [Widen(graph, s.Past), Widen(graph, scale.Past)], wide));
                var (codes, _, _) = Quantise(graph, computed, s.Present, scaleName: scale.Present);
                graph.Add(GraphEdits.Node("Cast", [codes], s.Present, Attr.Int("to", (int)TensorProto.Types.DataType.Int8)));
                stored.Add(s with { ElementType = TensorProto.Types.DataType.Int8, InPlace = false });
                stored.Add(scale);
                continue;
            }
            var type = StateTypeRule.AccumulatorType(stateType);
            graph.Add(GraphEdits.Node("Cast", [s.Past], wide, Attr.Int("to", (int)TensorProto.Types.DataType.Float)));
            graph.Add(GraphEdits.Node("Cast", [computed], s.Present, Attr.Int("to", (int)type)));
            stored.Add(s with { ElementType = type, InPlace = false });
        }
        return stored;
    }

    /// <summary><paramref name="value"/> rounded to the state type and back to <paramref name="type"/>.</summary>
    private string Round(Graph graph, string value, TensorProto.Types.DataType type, string hint)
    {
        if (type == stateType) return value;
        var narrow = graph.FreshName(hint + ".narrow");
        graph.Add(GraphEdits.Node("Cast", [value], narrow, Attr.Int("to", (int)stateType)));
        var back = graph.FreshName(hint);
        graph.Add(GraphEdits.Node("Cast", [narrow], back, Attr.Int("to", (int)type)));
        return back;
    }

    /// <summary>float32 keys or values quantised to int8 per head vector and dequantised again, in their layout.</summary>
    private static string RoundVectors(Graph graph, string value, KeyLayout layout, int headDim, string hint)
    {
        var vectors = value;
        if (layout == KeyLayout.Packed)
        {
            vectors = graph.FreshName(hint + ".vectors");
            graph.Add(GraphEdits.Node("Reshape", [value, graph.AddInt64Constant(hint + ".vector_shape", 0, 0, -1, headDim)], vectors));
        }
        var (codes, _, scale32) = Quantise(graph, vectors, hint);
        var back = graph.FreshName(hint + ".dequantised");
        graph.Add(GraphEdits.Node("Mul", [codes, scale32], back));
        if (layout != KeyLayout.Packed) return back;
        var packed = graph.FreshName(hint);
        graph.Add(GraphEdits.Node("Reshape", [back, graph.AddInt64Constant(hint + ".packed_shape", 0, 0, -1)], packed));
        return packed;
    }

    /// <summary>
    /// The int8 codes of float32 <paramref name="x"/> [.., d], as float32, and its scales [.., 1] in float16 (named
    /// <paramref name="scaleName"/> when given) and widened to float32.
    /// </summary>
    private static (string Codes, string Scale16, string Scale32) Quantise(Graph graph, string x, string hint, string? scaleName = null)
    {
        string Add(string op, string[] inputs, string what, params AttributeProto[] attributes)
        {
            var name = graph.FreshName($"{hint}.{what}");
            graph.Add(GraphEdits.Node(op, inputs, name, attributes));
            return name;
        }
        string Scalar(string what, float v)
        {
            var name = graph.FreshName($"{hint}.{what}");
            graph.AddInitializer(Tensors.Float(name, [v]));
            return name;
        }
        var absMax = Add("ReduceMax", [Add("Abs", [x], "abs"), graph.AddInt64Constant(hint + ".last_axis", -1)], "absmax", Attr.Int("keepdims", 1));
        var ratio = Add("Div", [absMax, Scalar("levels", Levels)], "ratio");
        var bounded = Add("Clip", [ratio, Scalar("smallest_scale", SmallestScale), Scalar("largest_scale", LargestScale)], "bounded");
        var scale16 = scaleName ?? graph.FreshName($"{hint}.scale16");
        graph.Add(GraphEdits.Node("Cast", [bounded], scale16, Attr.Int("to", (int)StateTypeRule.ScaleType)));
        var scale32 = Add("Cast", [scale16], "scale32", Attr.Int("to", (int)TensorProto.Types.DataType.Float));
        var rounded = Add("Round", [Add("Div", [x, scale32], "scaled")], "round");
        var codes = Add("Clip", [rounded, Scalar("lowest_code", -Levels), Scalar("highest_code", Levels)], "codes");
        return (codes, scale16, scale32);
    }

    /// <summary>A stored int8 or float16 state widened to float32.</summary>
    private static string Widen(Graph graph, string stored)
    {
        var name = graph.FreshName(stored + ".widened");
        graph.Add(GraphEdits.Node("Cast", [stored], name, Attr.Int("to", (int)TensorProto.Types.DataType.Float)));
        return name;
    }
}
