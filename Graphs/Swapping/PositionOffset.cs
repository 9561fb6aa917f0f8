using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// The swapped model's position input, <see cref="InputName"/> (int64: tokens already processed), a scalar (every
/// row at the same position) or [batch] (one position per row, so rows of different lengths can run together).
/// Parts of the graph that can follow each row read <see cref="Rows"/>; parts that can only take one number (a Range
/// over the sequence, a cache length read from a shape) read <see cref="Shared"/>, the largest row position. A model
/// in which no live node reads <see cref="Shared"/> after the swap takes per-row positions
/// (<see cref="SharedIsRead"/> false); otherwise the rows share one cache length: every row at the same position, or
/// rows padded to the longest in one batch, each fed its count of real tokens.
/// <para>
/// Exported decoders without a KV cache compute positions as Range(0, sequence_length, 1) from the ids' shape,
/// so a call with one new token would see position 0 again. <see cref="Apply"/> offsets every such Range by the
/// shared position, so positions continue across calls.
/// </para>
/// </summary>
public static class PositionOffset
{
    public const string InputName = "past_sequence_length";

    /// <summary>int64 [1] or [batch]: the input as a vector.</summary>
    public const string RowsName = InputName + ".rows";

    /// <summary>Marks the Range(0, S) of <see cref="PerRowPositions"/>, which is already offset per row.</summary>
    private const string RowOffsetsMarker = ".row_offsets";

    /// <summary>int64 scalar: the largest row position (see <see cref="Shared"/>).</summary>
    public const string SharedName = InputName + ".shared";

    /// <summary>Returns how many Range nodes were offset (0: the input is not added).</summary>
    /// <param name="g">The swapped graph.</param>
    /// <param name="masks">Inputs of length past + S (an attention_mask kept for padding): a Range over their length counts keys, not new tokens.</param>
    internal static int Apply(Graph g, IReadOnlyCollection<string>? masks = null)
    {
        var ranges = g.Nodes.Where(n => n.Is("Range") && !n.Name.Contains(RowOffsetsMarker, StringComparison.Ordinal) && IsZero(g, n.Input(0)) && IsOne(g, n.Input(2))
            && IsSequenceLength(g, n.Input(1), masks ?? [])).ToList();
        if (ranges.Count == 0) return 0;
        var shared = Shared(g);
        foreach (var range in ranges)
        {
            var limit = g.FreshName(range.Name + "_offset_limit");
            var add = new NodeProto { OpType = "Add", Name = limit };
            add.Input.AddRange([range.Input(1), shared]);
            add.Output.Add(limit);
            g.Add(add);
            range.Inputs[0] = shared;
            range.Inputs[1] = limit;
        }
        g.Invalidate();
        return ranges.Count;
    }

    /// <summary>
    /// Adds the int64 input unless the graph has it already. It declares no shape, so ORT takes a scalar as well as
    /// a [batch] vector.
    /// </summary>
    internal static void EnsureInput(Graph g)
    {
        if (g.Inputs.Any(i => i.Name == InputName)) return;
        g.Inputs.Add(new ValueInfoProto
        {
            Name = InputName,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Int64 } },
        });
    }

    /// <summary>int64 [1] (scalar input) or [batch]: each row's position, made once.</summary>
    internal static string Rows(Graph g)
    {
        EnsureInput(g);
        if (g.Producer(RowsName) is null)
        {
            var flat = g.AddInt64Constant(RowsName + ".shape", -1);
            g.Add(GraphEdits.Node("Reshape", [InputName, flat], RowsName));
        }
        return RowsName;
    }

    /// <summary>
    /// int64 scalar: the largest row position, for computations that cannot follow each row (a cache length). Rows
    /// padded in one batch are fed their count of real tokens; the longest row, which has no pads, counts every
    /// token the cache holds.
    /// </summary>
    internal static string Shared(Graph g)
    {
        var rows = Rows(g);
        if (g.Producer(SharedName) is null)
        {
            g.Add(GraphEdits.Node("ReduceMax", [rows], SharedName, Attr.Int("keepdims", 0)));
        }
        return SharedName;
    }

    /// <summary>Whether a node still reads the shared position (call after dead code is removed).</summary>
    internal static bool SharedIsRead(Graph g) => g.Consumers(SharedName).Count > 0;

    /// <summary>
    /// int64 [batch, S]: row b holds its position + 0 .. S - 1. <paramref name="batch"/> and <paramref name="length"/>
    /// are int64 [1] vectors (the batch size and S).
    /// </summary>
    internal static string PerRowPositions(Graph g, string batch, string length, string hint)
    {
        var zero = g.FreshName(hint + ".zero");
        g.AddInitializer(Tensors.Int64(zero, [0]));
        var one = g.FreshName(hint + ".one");
        g.AddInitializer(Tensors.Int64(one, [1]));
        var count = g.FreshName(hint + ".length");
        g.Add(GraphEdits.Node("Squeeze", [length, g.AddInt64Constant(hint + ".axis0", 0)], count));
        // Named so that Apply does not take it for a model's own positions and offset it a second time.
        var offsets = g.FreshName(hint + RowOffsetsMarker);
        g.Add(GraphEdits.Node("Range", [zero, count, one], offsets));
        var row = g.FreshName(hint + ".offsets_row");
        g.Add(GraphEdits.Node("Unsqueeze", [offsets, g.AddInt64Constant(hint + ".axis0_row", 0)], row));
        var column = g.FreshName(hint + ".starts");
        g.Add(GraphEdits.Node("Unsqueeze", [Rows(g), g.AddInt64Constant(hint + ".axis1", 1)], column));
        var sum = g.FreshName(hint + ".positions_rows");
        g.Add(GraphEdits.Node("Add", [column, row], sum));
        var shape = g.FreshName(hint + ".positions_shape");
        g.Add(GraphEdits.Node("Concat", [batch, length], shape, Attr.Int("axis", 0)));
        var positions = g.FreshName(hint + ".positions");
        g.Add(GraphEdits.Node("Expand", [sum, shape], positions));
        return positions;
    }

    private static bool IsZero(Graph g, string v) => ConstantReader.TryScalar(g.Constant(v), out var x) && x == 0;

    private static bool IsOne(Graph g, string v) => ConstantReader.TryScalar(g.Constant(v), out var x) && x == 1;

    /// <summary>Squeeze(Shape(x, start=1, end=2)) or Gather(Shape(x), 1), x a graph input: the sequence length.</summary>
    private static bool IsSequenceLength(Graph g, string v, IReadOnlyCollection<string> masks)
    {
        bool IsGraphInput(string value) => g.IsGraphInput(value) && !masks.Contains(value);
        var p = g.Producer(v);
        while (p is not null && (p.Is("Cast") || p.Is("Squeeze") || p.Is("Reshape")))
        {
            if (p.Is("Squeeze") && g.Producer(p.Input(0)) is { } shape && shape.Is("Shape"))
            {
                return IsGraphInput(shape.Input(0)) && shape.IntAttribute("start", 0) == 1 && shape.IntAttribute("end", long.MaxValue) == 2;
            }
            p = g.Producer(p.Input(0));
        }
        return p is not null && p.Is("Gather") && g.Producer(p.Input(0)) is { } s && s.Is("Shape") && IsGraphInput(s.Input(0))
            && ConstantReader.TryScalar(g.Constant(p.Input(1)), out var axis) && axis == 1;
    }
}
