using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Attention.Matchers;

/// <summary>
/// Skips nodes that leave attention's maths alone: Identity, and Cast between float types (ONNX's
/// function-expanded Attention casts the scores to the softmax precision and back).
/// </summary>
public static class PassThroughMatcher
{
    public static string Peel(Graph g, string value)
    {
        while (g.Producer(value) is { } p && IsPassThrough(p)) value = p.Input(0);
        return value;
    }

    public static bool IsPassThrough(GraphNode p) =>
        p.Is("Identity") || (p.Is("Cast") && StaticTensor.IsFloatType((TensorProto.Types.DataType)p.IntAttribute("to", 0)));

    /// <summary>
    /// The one MatMul that reads <paramref name="value"/> as its first operand, after any pass-through nodes, and
    /// the value it reads. Other readers (a model that also outputs the probabilities) may share the value.
    /// </summary>
    public static (GraphNode? MatMul, string Value) ForwardToMatMul(Graph g, string value)
    {
        var found = new List<(GraphNode, string)>();
        var pending = new Queue<string>([value]);
        while (pending.Count > 0)
        {
            var v = pending.Dequeue();
            foreach (var reader in g.Consumers(v))
            {
                if (reader.Is("MatMul") && reader.Input(0) == v) found.Add((reader, v));
                else if (IsPassThrough(reader)) pending.Enqueue(reader.Outputs[0]);
            }
        }
        return found.Count == 1 ? found[0] : (null, value);
    }
}
