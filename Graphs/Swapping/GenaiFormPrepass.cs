using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Rewrites the onnxruntime-genai builder's GroupQueryAttention into the form the swap takes today: the packed
/// QKV projection is split into query, key and value (with their widths recorded), and seqlens_k, which the builder
/// computes from the attention mask's values, is recomputed from the mask's shape (total length - 1 for every row).
/// That second step assumes rows without padding: the swapped model reads one position for all rows. It is a
/// stop-gap until the swap itself takes the packed form and the mask; models without a packed
/// GroupQueryAttention are left as they are.
/// </summary>
public static class GenaiFormPrepass
{
    private const string Domain = "com.microsoft";

    /// <summary>Returns how many GroupQueryAttention nodes were rewritten.</summary>
    public static int Apply(ModelProto model)
    {
        var g = model.Graph;
        var packed = g.Node.Where(n => n.OpType == "GroupQueryAttention" && n.Domain == Domain && n.Input.Count > 2 && n.Input[1].Length == 0 && n.Input[2].Length == 0).ToList();
        if (packed.Count == 0) return 0;
        var inputNames = g.Input.Select(i => i.Name).ToHashSet();
        string? uniformSeqlens = null;
        var index = 0;
        foreach (var node in packed)
        {
            var heads = Int(node, "num_heads");
            var kvHeads = Int(node, "kv_num_heads");
            var width = PackedWidth(g, node.Input[0]) ?? throw new GraphException(
                $"GroupQueryAttention '{node.Name}': the width of its packed QKV input '{node.Input[0]}' is unknown (no value_info, not a MatMul by an initializer)");
            var total = heads + 2 * kvHeads;
            if (heads <= 0 || kvHeads <= 0 || width % total != 0)
            {
                throw new GraphException($"GroupQueryAttention '{node.Name}': packed width {width} does not split into {heads} query and 2 x {kvHeads} KV heads");
            }
            var d = width / total;
            var hint = $"genai_prepass.{index++}";
            var sizes = hint + ".split_sizes";
            g.Initializer.Add(Tensors.Int64(sizes, [heads * d, kvHeads * d, kvHeads * d], 3));
            var split = new NodeProto { OpType = "Split", Name = hint + ".split" };
            split.Input.AddRange([node.Input[0], sizes]);
            split.Output.AddRange([hint + ".query", hint + ".key", hint + ".value"]);
            split.Attribute.Add(Attr.Int("axis", 2));
            g.Node.Insert(g.Node.IndexOf(node), split);
            foreach (var (name, w) in new[] { (hint + ".query", heads * d), (hint + ".key", kvHeads * d), (hint + ".value", kvHeads * d) })
            {
                g.ValueInfo.Add(Packed3d(name, w));
            }
            node.Input[0] = hint + ".query";
            node.Input[1] = hint + ".key";
            node.Input[2] = hint + ".value";

            if (node.Input.Count > 6 && ReadsInputValues(g, node.Input[5], inputNames))
            {
                if (uniformSeqlens is null)
                {
                    var added = new List<NodeProto>();
                    uniformSeqlens = UniformSeqlens(g, node.Input[6], added);
                    var at = g.Node.IndexOf(node);
                    for (var i = 0; i < added.Count; i++) g.Node.Insert(at + i, added[i]);
                }
                node.Input[5] = uniformSeqlens;
            }
        }
        return packed.Count;
    }

    private static long Int(NodeProto n, string name) => n.Attribute.FirstOrDefault(a => a.Name == name)?.I ?? 0;

    /// <summary>The last dimension of the packed QKV: from value_info, or from the MatMul weight that produces it.</summary>
    private static long? PackedWidth(GraphProto g, string value)
    {
        var info = g.ValueInfo.Concat(g.Output).FirstOrDefault(v => v.Name == value)?.Type?.TensorType?.Shape?.Dim;
        if (info is { Count: 3 } && info[2].HasDimValue) return info[2].DimValue;
        var producer = g.Node.FirstOrDefault(n => n.Output.Contains(value));
        if (producer is { OpType: "MatMul" } && g.Initializer.FirstOrDefault(t => t.Name == producer.Input[1]) is { Dims.Count: 2 } weight)
        {
            return weight.Dims[1];
        }
        if (producer is { OpType: "Add" } add)
        {
            return PackedWidth(g, add.Input[0]) ?? PackedWidth(g, add.Input[1]);
        }
        return null;
    }

    private static bool ReadsInputValues(GraphProto g, string value, HashSet<string> inputs)
    {
        var pending = new Stack<string>([value]);
        var seen = new HashSet<string>();
        while (pending.Count > 0)
        {
            var v = pending.Pop();
            if (!seen.Add(v)) continue;
            if (inputs.Contains(v)) return true;
            var p = g.Node.FirstOrDefault(n => n.Output.Contains(v));
            if (p is null || p.OpType is "Shape" or "Size") continue;
            foreach (var i in p.Input.Where(i => i.Length > 0)) pending.Push(i);
        }
        return false;
    }

    /// <summary>int32 [batch]: total_sequence_length - 1 for every row, the batch read from the ids' shape.</summary>
    private static string UniformSeqlens(GraphProto g, string totalLength, List<NodeProto> added)
    {
        const string hint = "genai_prepass.seqlens";
        var ids = g.Input.First().Name;
        g.Initializer.Add(Tensors.Int64(hint + ".one", [1]));
        NodeProto Node(string op, string[] ins, string output, params AttributeProto[] attributes)
        {
            var n = new NodeProto { OpType = op, Name = output };
            n.Input.AddRange(ins);
            n.Output.Add(output);
            n.Attribute.AddRange(attributes);
            added.Add(n);
            return n;
        }
        Node("Cast", [totalLength], hint + ".total", Attr.Int("to", (int)TensorProto.Types.DataType.Int64));
        Node("Sub", [hint + ".total", hint + ".one"], hint + ".last");
        Node("Shape", [ids], hint + ".batch", Attr.Int("start", 0), Attr.Int("end", 1));
        Node("Expand", [hint + ".last", hint + ".batch"], hint + ".rows");
        Node("Cast", [hint + ".rows"], hint, Attr.Int("to", (int)TensorProto.Types.DataType.Int32));
        return hint;
    }

    private static ValueInfoProto Packed3d(string name, long width)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "batch_size" });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "sequence_length" });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = width });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }
}
