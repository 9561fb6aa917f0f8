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

    /// <summary>A recorded dimension above this is not a real model's (2^40, as for tensors).</summary>
    public const long MaxDim = MaxElements;

    /// <summary>Linear in the model's size: every lookup goes through a set, so 200,000 nodes check in well under a second.</summary>
    public static void Validate(ModelProto model, string what = "model")
    {
        var g = model.Graph ?? throw new GraphException($"{what}: holds no graph");
        var initializers = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in g.Initializer)
        {
            if (!initializers.Add(t.Name)) throw new GraphException($"{what}: initializer '{t.Name}' is defined more than once");
            CheckTensor(t, what);
        }
        var inputs = new HashSet<string>(StringComparer.Ordinal);
        foreach (var i in g.Input)
        {
            if (!inputs.Add(i.Name)) throw new GraphException($"{what}: graph input '{i.Name}' is declared more than once");
        }
        var outputs = new HashSet<string>(StringComparer.Ordinal);
        foreach (var o in g.Output)
        {
            if (!outputs.Add(o.Name)) throw new GraphException($"{what}: graph output '{o.Name}' is declared more than once");
        }
        foreach (var v in g.Input.Concat(g.Output).Concat(g.ValueInfo)) CheckRecordedShape(v, what);
        foreach (var n in g.Node)
        {
            OpArity.Check(n, what);
            foreach (var a in n.Attribute.Where(a => a.T is not null))
            {
                CheckTensor(a.T, $"{what}: node '{n.Name}' attribute '{a.Name}'");
            }
        }
        AttributeChecks.Check(g, what);
        var defined = new HashSet<string>(inputs, StringComparer.Ordinal);
        defined.UnionWith(initializers);
        var produced = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in g.Node)
        {
            foreach (var o in n.Output.Where(o => o.Length > 0))
            {
                if (!produced.Add(o) || initializers.Contains(o))
                {
                    throw new GraphException($"{what}: value '{o}' is produced more than once (node '{n.Name}')");
                }
            }
        }
        defined.UnionWith(produced);
        var constants = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
        foreach (var t in g.Initializer) constants[t.Name] = t;
        foreach (var n in g.Node)
        {
            if (n.OpType == "Constant" && n.Output.Count == 1 && n.Attribute.FirstOrDefault(a => a.Name == "value")?.T is { } value)
            {
                constants[n.Output[0]] = value;
            }
        }
        foreach (var n in g.Node)
        {
            var missing = n.Input.FirstOrDefault(i => i.Length > 0 && !defined.Contains(i));
            if (missing is not null && n.Attribute.All(a => a.G is null && a.Graphs.Count == 0))
            {
                throw new GraphException($"{what}: node '{n.Name}' ({n.OpType}) reads '{missing}', which nothing defines");
            }
            if (n.OpType == "Split" && n.Input.Count > 1 && n.Input[1].Length > 0)
            {
                OpArity.CheckSplitSizes(n, constants.GetValueOrDefault(n.Input[1]), what);
            }
        }
        var undefinedOutput = g.Output.FirstOrDefault(o => !defined.Contains(o.Name));
        if (undefinedOutput is not null)
        {
            throw new GraphException($"{what}: graph output '{undefinedOutput.Name}' is never computed");
        }
        new Graph(g).TopologicalOrder(); // throws naming a node on a cycle (reads the graph, changes nothing)
    }

    /// <summary>
    /// A recorded shape drives the state shapes of the swap and the sizes a host allocates: a negative or absurd
    /// dimension (a forged value_info) is refused here rather than becoming a state of size -1.
    /// </summary>
    private static void CheckRecordedShape(ValueInfoProto v, string what)
    {
        if (v.Type?.TensorType?.Shape is not { } shape) return;
        foreach (var d in shape.Dim)
        {
            if (d.HasDimValue && (d.DimValue < 0 || d.DimValue > MaxDim))
            {
                throw new GraphException($"{what}: value '{v.Name}' records dimension {d.DimValue}; a dimension must be in [0, {MaxDim}]");
            }
        }
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
        var stored = (long)t.FloatData.Count + t.Int32Data.Count + t.Int64Data.Count + t.DoubleData.Count + t.Uint64Data.Count + t.StringData.Count;
        if (!t.RawData.IsEmpty && stored > 0)
        {
            throw new GraphException($"{what}: tensor '{t.Name}' holds both raw_data and typed data; which one is meant is ambiguous");
        }
        if (!t.RawData.IsEmpty)
        {
            if (size > 0 && t.RawData.Length != count * size)
            {
                throw new GraphException($"{what}: tensor '{t.Name}' declares {count} elements ({count * size} bytes) but holds {t.RawData.Length} bytes");
            }
            return;
        }
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
