using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Keeps another replacement's state in float16 or bfloat16 between calls: each past is cast up to float32 before the
/// operator and each present cast down after it, so the operators (whose state is float32) run unchanged and the
/// model's state inputs and outputs are half the bytes. Keys and values are rounded to the state type first: a ring
/// cache then stores them exactly, and a sequence fed whole, token by token or in pieces sees the same keys. An
/// accumulated memory (linear attention's sums) is rounded once per call, so it drifts slightly with the call pattern.
/// </summary>
internal sealed class StateTypeReplacement(IAttentionReplacement inner, TensorProto.Types.DataType stateType) : IAttentionReplacement
{
    public string? Refusal(AttentionMatch match) => inner.Refusal(match);

    /// <summary>Cast to bfloat16 is opset 13.</summary>
    public int RequiredOpset(AttentionMatch match) =>
        Math.Max(inner.RequiredOpset(match), stateType == TensorProto.Types.DataType.Bfloat16 ? 13 : 0);

    public IReadOnlyList<StateTensor> Replace(Graph graph, AttentionMatch m, int layer, Dim batch)
    {
        var hint = $"layers.{layer}.attention";
        var rounded = m with { Key = Round(graph, m.Key, m.ElementType, $"{hint}.k_rounded"), Value = Round(graph, m.Value, m.ElementType, $"{hint}.v_rounded") };
        var states = inner.Replace(graph, rounded, layer, batch);
        var stored = new List<StateTensor>();
        foreach (var s in states)
        {
            if (s.GrowingAxis is not null || s.ElementType != TensorProto.Types.DataType.Float)
            {
                throw new GraphException($"state '{s.Past}' is not a fixed-size float32 state, so it cannot be kept in {StateTypeRule.Name(stateType)}");
            }
            var wide = graph.FreshName(s.Past + ".float");
            graph.ReplaceUses(s.Past, wide);
            graph.Add(GraphEdits.Node("Cast", [s.Past], wide, Attr.Int("to", (int)TensorProto.Types.DataType.Float)));
            var producer = graph.Producer(s.Present) ?? throw new GraphException($"state '{s.Present}' has no producer");
            var computed = graph.FreshName(s.Present + ".float");
            for (var i = 0; i < producer.Outputs.Count; i++)
            {
                if (producer.Outputs[i] == s.Present) producer.Outputs[i] = computed;
            }
            graph.Invalidate();
            graph.Add(GraphEdits.Node("Cast", [computed], s.Present, Attr.Int("to", (int)stateType)));
            // Two Casts stand between the buffers and the operator, so the past and present are separate buffers.
            stored.Add(s with { ElementType = stateType, InPlace = false });
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
}
