using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Io;

/// <summary>
/// Structural checks on a model from an untrusted source, run before anything acts on it: tensor sizes that
/// agree with their data (so no declared size drives an allocation), values that are defined before use, no value
/// produced twice, and no cycles.
/// </summary>
public static class ModelChecks
{
    /// <summary>No tensor of ours may claim more elements than this (2^40: far above any real model).</summary>
    public const long MaxElements = 1L << 40;

    public static void Validate(ModelProto model, string what = "model")
    {
        var g = model.Graph ?? throw new GraphException($"{what}: holds no graph");
        foreach (var t in g.Initializer)
        {
            CheckTensor(t, what);
        }
        foreach (var n in g.Node)
        {
            foreach (var a in n.Attribute.Where(a => a.T is not null))
            {
                CheckTensor(a.T, $"{what}: node '{n.Name}' attribute '{a.Name}'");
            }
        }
        var defined = new HashSet<string>(g.Input.Select(i => i.Name).Concat(g.Initializer.Select(i => i.Name)));
        var produced = new HashSet<string>();
        foreach (var n in g.Node)
        {
            foreach (var o in n.Output.Where(o => o.Length > 0))
            {
                if (!produced.Add(o) || g.Initializer.Any(i => i.Name == o))
                {
                    throw new GraphException($"{what}: value '{o}' is produced more than once (node '{n.Name}')");
                }
            }
        }
        defined.UnionWith(produced);
        foreach (var n in g.Node)
        {
            var missing = n.Input.FirstOrDefault(i => i.Length > 0 && !defined.Contains(i));
            if (missing is not null && n.Attribute.All(a => a.G is null && a.Graphs.Count == 0))
            {
                throw new GraphException($"{what}: node '{n.Name}' ({n.OpType}) reads '{missing}', which nothing defines");
            }
        }
        var undefinedOutput = g.Output.FirstOrDefault(o => !defined.Contains(o.Name));
        if (undefinedOutput is not null)
        {
            throw new GraphException($"{what}: graph output '{undefinedOutput.Name}' is never computed");
        }
        new Graph(g.Clone()).TopologicalOrder(); // throws naming a node on a cycle
    }

    private static void CheckTensor(TensorProto t, string what)
    {
        long count = 1;
        foreach (var d in t.Dims)
        {
            if (d < 0) throw new GraphException($"{what}: tensor '{t.Name}' has a negative dimension {d}");
            if (d > 0 && count > MaxElements / d) throw new GraphException($"{what}: tensor '{t.Name}' declares more than {MaxElements} elements");
            count *= d;
        }
        if (t.DataLocation == TensorProto.Types.DataLocation.External) return; // checked against the file when loaded
        var size = ElementSize((TensorProto.Types.DataType)t.DataType);
        if (!t.RawData.IsEmpty)
        {
            if (size > 0 && t.RawData.Length != count * size)
            {
                throw new GraphException($"{what}: tensor '{t.Name}' declares {count} elements ({count * size} bytes) but holds {t.RawData.Length} bytes");
            }
            return;
        }
        var stored = t.FloatData.Count + t.Int32Data.Count + t.Int64Data.Count + t.DoubleData.Count + t.Uint64Data.Count + t.StringData.Count;
        if (stored != 0 && stored != count)
        {
            throw new GraphException($"{what}: tensor '{t.Name}' declares {count} elements but holds {stored}");
        }
    }

    private static int ElementSize(TensorProto.Types.DataType type) => type switch
    {
        TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Int32 or TensorProto.Types.DataType.Uint32 => 4,
        TensorProto.Types.DataType.Double or TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Uint64 => 8,
        TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16 or TensorProto.Types.DataType.Int16 or TensorProto.Types.DataType.Uint16 => 2,
        TensorProto.Types.DataType.Int8 or TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Bool => 1,
        _ => 0,
    };
}
