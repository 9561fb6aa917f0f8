using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Exported decoders without a KV cache compute positions as Range(0, sequence_length, 1) from the ids' shape,
/// so a call with one new token would see position 0 again. This rule offsets every such Range by a new scalar
/// input, <see cref="InputName"/> (tokens already processed), so positions continue across calls.
/// </summary>
public static class PositionOffset
{
    public const string InputName = "past_sequence_length";

    /// <summary>Returns how many Range nodes were offset (0: the input is not added).</summary>
    internal static int Apply(Graph g)
    {
        var ranges = g.Nodes.Where(n => n.Is("Range") && IsZero(g, n.Input(0)) && IsOne(g, n.Input(2)) && IsSequenceLength(g, n.Input(1))).ToList();
        if (ranges.Count == 0) return 0;
        EnsureInput(g);
        foreach (var range in ranges)
        {
            var limit = g.FreshName(range.Name + "_offset_limit");
            var add = new NodeProto { OpType = "Add", Name = limit };
            add.Input.AddRange([range.Input(1), InputName]);
            add.Output.Add(limit);
            g.Add(add);
            range.Inputs[0] = InputName;
            range.Inputs[1] = limit;
        }
        g.Invalidate();
        return ranges.Count;
    }

    /// <summary>Adds the scalar int64 input unless the graph has it already.</summary>
    internal static void EnsureInput(Graph g)
    {
        if (g.Inputs.Any(i => i.Name == InputName)) return;
        g.Inputs.Add(new ValueInfoProto
        {
            Name = InputName,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Int64, Shape = new TensorShapeProto() } },
        });
    }

    private static bool IsZero(Graph g, string v) => ConstantReader.TryScalar(g.Constant(v), out var x) && x == 0;

    private static bool IsOne(Graph g, string v) => ConstantReader.TryScalar(g.Constant(v), out var x) && x == 1;

    /// <summary>Squeeze(Shape(x, start=1, end=2)) or Gather(Shape(x), 1), x a graph input: the sequence length.</summary>
    private static bool IsSequenceLength(Graph g, string v)
    {
        var p = g.Producer(v);
        while (p is not null && (p.Is("Cast") || p.Is("Squeeze") || p.Is("Reshape")))
        {
            if (p.Is("Squeeze") && g.Producer(p.Input(0)) is { } shape && shape.Is("Shape"))
            {
                return g.IsGraphInput(shape.Input(0)) && shape.IntAttribute("start", 0) == 1 && shape.IntAttribute("end", long.MaxValue) == 2;
            }
            p = g.Producer(p.Input(0));
        }
        return p is not null && p.Is("Gather") && g.Producer(p.Input(0)) is { } s && s.Is("Shape") && g.IsGraphInput(s.Input(0))
            && ConstantReader.TryScalar(g.Constant(p.Input(1)), out var axis) && axis == 1;
    }
}
