using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using DataType = OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType;

namespace OnnxAttention.Graphs.Io;

/// <summary>
/// Axis and permutation attributes of the standard ops checked against the rank the model records for their input,
/// at load: an out-of-range Transpose perm, Concat or Gather axis is refused naming the node before any code (ours
/// or ORT's) indexes with it. Also the element types of the ONNX Attention op's query, key and value, so a node
/// renamed to Attention is refused rather than analysed as attention.
/// </summary>
public static class AttributeChecks
{
    public static void Check(GraphProto g, string what)
    {
        var recorded = new ValueShapes(g);
        var types = new Dictionary<string, DataType>(StringComparer.Ordinal);
        foreach (var v in g.Input.Concat(g.Output).Concat(g.ValueInfo))
        {
            if (v.Type?.TensorType is { ElemType: > 0 } t) types[v.Name] = (DataType)t.ElemType;
        }
        foreach (var t in g.Initializer) types[t.Name] = (DataType)t.DataType;
        foreach (var n in g.Node)
        {
            if (n.Domain.Length > 0 && n.Domain != "ai.onnx") continue;
            int? Rank(int input) => input < n.Input.Count ? recorded.Rank(n.Input[input]) : null;
            switch (n.OpType)
            {
                case "Transpose" when Ints(n, "perm") is { } perm:
                    if (!IsPermutation(perm) || Rank(0) is { } r && r != perm.Count)
                    {
                        throw new GraphException($"{what}: node '{n.Name}' (Transpose) has perm [{string.Join(", ", perm)}], which is not a permutation of the axes of its input" +
                                                 (Rank(0) is { } rank ? $" (rank {rank})" : ""));
                    }
                    break;
                case "Concat" or "Gather" or "GatherElements" or "Softmax" or "LogSoftmax" or "Split" or "CumSum" or "Flatten":
                    if (Int(n, "axis") is { } axis && Rank(0) is { } rank0 && !InRange(axis, rank0 + (n.OpType == "Flatten" ? 1 : 0)))
                    {
                        throw new GraphException($"{what}: node '{n.Name}' ({n.OpType}) has axis {axis}; its input has rank {rank0}");
                    }
                    break;
                case "Squeeze" when Ints(n, "axes") is { } axes && Rank(0) is { } rank1:
                    if (axes.Any(a => !InRange(a, rank1))) throw new GraphException($"{what}: node '{n.Name}' (Squeeze) has axes [{string.Join(", ", axes)}]; its input has rank {rank1}");
                    break;
                case "Unsqueeze" when Ints(n, "axes") is { } axes && Rank(0) is { } rank2:
                    if (axes.Any(a => !InRange(a, rank2 + axes.Count))) throw new GraphException($"{what}: node '{n.Name}' (Unsqueeze) has axes [{string.Join(", ", axes)}]; its input has rank {rank2}");
                    break;
                case "Attention":
                    for (var i = 0; i < 3 && i < n.Input.Count; i++)
                    {
                        if (types.TryGetValue(n.Input[i], out var type) && type is not (DataType.Float or DataType.Float16 or DataType.Bfloat16 or DataType.Double))
                        {
                            throw new GraphException($"{what}: node '{n.Name}' (Attention) reads '{n.Input[i]}' of type {type} as its {(i == 0 ? "query" : i == 1 ? "key" : "value")}; Attention takes floating-point query, key and value");
                        }
                    }
                    break;
            }
        }
    }

    private static bool InRange(long axis, int rank) => axis >= -rank && axis < rank;

    private static bool IsPermutation(IReadOnlyList<long> perm)
    {
        var seen = new HashSet<long>();
        return perm.All(a => a >= 0 && a < perm.Count && seen.Add(a));
    }

    private static long? Int(NodeProto n, string name) => n.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.I : null;

    private static IReadOnlyList<long>? Ints(NodeProto n, string name) => n.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.Ints : null;
}
