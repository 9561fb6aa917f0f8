using System.Runtime.InteropServices;
using Google.Protobuf;
using OnnxAttention.Graphs.Onnx;
using DataType = OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType;

namespace OnnxAttention.Fuzz;

/// <summary>
/// Structure-aware mutations of a model, the way a broken exporter or an attacker would change it: dims,
/// attributes, metadata, external data (including the FIFO, symlinked-folder and /dev/zero cases, made in the case's
/// folder), op types, node wiring, long chains, tensor data; then, sometimes, byte-level bit flips and truncation
/// of the serialized file. Every choice comes from the case's Random, so a case number replays exactly.
/// </summary>
public static class FuzzMutator
{
    private static readonly long[] Interesting =
    [
        -1, 0, 1, 2, 3, -2, 4, 16, 64, 255, 4096, int.MaxValue, int.MinValue, (long)int.MaxValue + 1, -(1L << 31) - 1,
        long.MaxValue, long.MinValue, (1L << 62) + 1, 1L << 32, 1L << 40, -87, 87, -38,
    ];

    private static readonly string[] OpTypes =
    [
        "Attention", "Split", "Range", "Softmax", "MatMul", "Transpose", "Concat", "Gather", "Identity", "Reshape", "Slice",
        "Squeeze", "Unsqueeze", "Expand", "Shape", "Cast", "Where", "Add", "Mul", "Div", "ConstantOfShape", "Constant",
        "Trilu", "CumSum", "Size", "RotaryEmbedding", "LayerNormalization", "Neg", "Sqrt", "Max", "Tile", "Pad", "NoSuchOp",
    ];

    private static readonly string[] MicrosoftOps = ["GroupQueryAttention", "MultiHeadAttention", "RotaryEmbedding", "SkipLayerNormalization"];

    private static readonly string[] MetadataKeys =
        ["onnx_attention.rule", "onnx_attention.state", "onnx_attention.layers", "onnx_attention.positions", "onnx_attention.other", "producer"];

    private static readonly string[] MetadataValues =
    [
        "", "null", "[{}]", "shared", "per_row", "window:16", "linear-elu", "[]", "{", "[{\"past\":\"x\",\"present\":\"y\",\"shape\":[\"batch\",\"-5\"],\"type\":\"float\"}]",
        "[{\"past\":\"p\",\"present\":\"q\",\"shape\":[\"batch\",\"9223372036854775807\",\"4\"],\"type\":\"float\",\"grows\":1}]", "-1", "99999999999999999999",
    ];

    /// <summary>Applies 1-3 structural mutations; files some of them need are made in <paramref name="folder"/>.</summary>
    public static List<string> Mutate(ModelProto model, Random rng, string folder)
    {
        var applied = new List<string>();
        var count = 1 + rng.Next(3);
        for (var i = 0; i < count; i++)
        {
            var kind = rng.Next(15);
            try
            {
                var what = kind switch
                {
                    0 => Dims(model, rng),
                    1 or 2 => AttributeValue(model, rng),
                    3 => AttributeAddOrRemove(model, rng),
                    4 => Metadata(model, rng),
                    5 => ExternalData(model, rng, folder),
                    6 or 7 => OpType(model, rng),
                    8 or 9 => Wiring(model, rng),
                    10 => Chain(model, rng),
                    11 => TensorData(model, rng),
                    12 => Delete(model, rng),
                    13 => Duplicate(model, rng),
                    _ => ValueType(model, rng),
                };
                applied.Add(what);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or IndexOutOfRangeException or IOException)
            {
                applied.Add($"(mutation {kind} did not apply)");
            }
        }
        return applied;
    }

    /// <summary>Byte-level damage to the serialized model: bit flips, truncation, a byte run removed or repeated.</summary>
    public static (byte[] Bytes, string What) MutateBytes(byte[] bytes, Random rng)
    {
        if (bytes.Length == 0) return (bytes, "empty");
        switch (rng.Next(4))
        {
            case 0:
                {
                    var copy = (byte[])bytes.Clone();
                    var flips = 1 + rng.Next(8);
                    for (var i = 0; i < flips; i++) copy[rng.Next(copy.Length)] ^= (byte)(1 << rng.Next(8));
                    return (copy, $"{flips} bit flips");
                }
            case 1:
                {
                    var length = rng.Next(bytes.Length);
                    return (bytes[..length], $"truncated to {length} bytes");
                }
            case 2:
                {
                    var at = rng.Next(bytes.Length);
                    var n = Math.Min(bytes.Length - at, 1 + rng.Next(64));
                    return ([.. bytes[..at], .. bytes[(at + n)..]], $"{n} bytes removed at {at}");
                }
            default:
                {
                    var at = rng.Next(bytes.Length);
                    var n = Math.Min(bytes.Length - at, 1 + rng.Next(64));
                    return ([.. bytes[..(at + n)], .. bytes[at..]], $"{n} bytes repeated at {at}");
                }
        }
    }

    private static long Pick(Random rng) => rng.Next(3) == 0 ? rng.Next(-4, 70) : Interesting[rng.Next(Interesting.Length)];

    private static T PickFrom<T>(IList<T> items, Random rng) =>
        items.Count == 0 ? throw new InvalidOperationException("nothing to pick") : items[rng.Next(items.Count)];

    private static IEnumerable<string> Values(GraphProto g) =>
        g.Input.Select(i => i.Name).Concat(g.Initializer.Select(t => t.Name)).Concat(g.Node.SelectMany(n => n.Output));

    private static string Dims(ModelProto m, Random rng)
    {
        var g = m.Graph;
        if (rng.Next(2) == 0 && g.Initializer.Count > 0)
        {
            var t = PickFrom(g.Initializer, rng);
            if (t.Dims.Count == 0 || rng.Next(4) == 0) t.Dims.Add(Pick(rng));
            else t.Dims[rng.Next(t.Dims.Count)] = Pick(rng);
            return $"initializer '{t.Name}' dims [{string.Join(",", t.Dims)}]";
        }
        var infos = g.Input.Concat(g.Output).Concat(g.ValueInfo).Where(v => v.Type?.TensorType?.Shape is not null).ToList();
        var v = PickFrom(infos, rng);
        var shape = v.Type.TensorType.Shape;
        if (shape.Dim.Count == 0 || rng.Next(5) == 0)
        {
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = Pick(rng) });
        }
        else
        {
            var d = shape.Dim[rng.Next(shape.Dim.Count)];
            if (rng.Next(4) == 0) d.DimParam = "sym" + rng.Next(3);
            else d.DimValue = Pick(rng);
        }
        return $"value '{v.Name}' shape changed";
    }

    private static string AttributeValue(ModelProto m, Random rng)
    {
        var n = PickFrom(m.Graph.Node.Where(n => n.Attribute.Count > 0).ToList(), rng);
        var a = PickFrom(n.Attribute, rng);
        switch (a.Type)
        {
            case AttributeProto.Types.AttributeType.Int:
                a.I = Pick(rng);
                break;
            case AttributeProto.Types.AttributeType.Ints:
                if (a.Ints.Count == 0 || rng.Next(4) == 0) a.Ints.Add(Pick(rng));
                else if (rng.Next(4) == 0) a.Ints.RemoveAt(rng.Next(a.Ints.Count));
                else a.Ints[rng.Next(a.Ints.Count)] = Pick(rng);
                break;
            case AttributeProto.Types.AttributeType.Float:
                a.F = new[] { float.NaN, float.PositiveInfinity, 0f, -1f, 1e30f, -0f }[rng.Next(6)];
                break;
            case AttributeProto.Types.AttributeType.Tensor when a.T is not null:
                if (a.T.Dims.Count > 0 && rng.Next(2) == 0) a.T.Dims[rng.Next(a.T.Dims.Count)] = Pick(rng);
                else a.T.DataType = rng.Next(1, 17);
                break;
            default:
                a.Type = AttributeProto.Types.AttributeType.Int;
                a.I = Pick(rng);
                break;
        }
        return $"attribute '{a.Name}' of '{n.Name}' ({n.OpType})";
    }

    private static string AttributeAddOrRemove(ModelProto m, Random rng)
    {
        var n = PickFrom(m.Graph.Node, rng);
        if (n.Attribute.Count > 0 && rng.Next(2) == 0)
        {
            var a = PickFrom(n.Attribute, rng);
            n.Attribute.Remove(a);
            return $"attribute '{a.Name}' removed from '{n.Name}'";
        }
        var name = new[] { "axis", "perm", "axes", "num_outputs", "split", "to", "start", "end", "allowzero", "q_num_heads", "kv_num_heads", "scale" }[rng.Next(12)];
        n.Attribute.Remove(n.Attribute.FirstOrDefault(a => a.Name == name));
        var attribute = new AttributeProto { Name = name };
        if (name is "perm" or "axes" or "split")
        {
            attribute.Type = AttributeProto.Types.AttributeType.Ints;
            var k = rng.Next(6);
            for (var i = 0; i < k; i++) attribute.Ints.Add(Pick(rng));
        }
        else if (name == "scale")
        {
            attribute.Type = AttributeProto.Types.AttributeType.Float;
            attribute.F = rng.Next(2) == 0 ? float.NaN : -1f;
        }
        else
        {
            attribute.Type = AttributeProto.Types.AttributeType.Int;
            attribute.I = Pick(rng);
        }
        n.Attribute.Add(attribute);
        return $"attribute '{name}' set on '{n.Name}' ({n.OpType})";
    }

    private static string Metadata(ModelProto m, Random rng)
    {
        var key = MetadataKeys[rng.Next(MetadataKeys.Length)];
        var value = rng.Next(20) == 0 ? new string('[', 100_000) : MetadataValues[rng.Next(MetadataValues.Length)];
        m.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        if (rng.Next(4) == 0) m.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return $"metadata '{key}'";
    }

    private static string ExternalData(ModelProto m, Random rng, string folder)
    {
        var t = PickFrom(m.Graph.Initializer.Where(t => t.RawData.Length is > 0 and < 1 << 20).ToList(), rng);
        var data = t.RawData.ToByteArray();
        // A case may apply this mutation twice: each application makes its own files.
        var n = Directory.GetFileSystemEntries(folder).Length;
        File.WriteAllBytes(Path.Combine(folder, "w.bin"), data);
        t.RawData = ByteString.Empty;
        t.DataLocation = TensorProto.Types.DataLocation.External;
        string location = "w.bin";
        long offset = 0;
        long? length = data.Length;
        var scenario = rng.Next(14);
        switch (scenario)
        {
            case 0: break; // valid
            case 1: location = "../w.bin"; break;
            case 2: location = "/etc/hostname"; break;
            case 3:
                Directory.CreateSymbolicLink(Path.Combine(folder, $"link_dir{n}"), "/etc");
                location = $"link_dir{n}/hostname";
                break;
            case 4:
                if (OperatingSystem.IsLinux() && MakeFifo(Path.Combine(folder, $"fifo{n}"), 0x180) != 0) return "fifo not made";
                location = $"fifo{n}";
                break;
            case 5:
                File.CreateSymbolicLink(Path.Combine(folder, $"zero{n}"), "/dev/zero");
                location = $"zero{n}";
                length = rng.Next(2) == 0 ? null : data.Length;
                break;
            case 6: offset = Pick(rng); break;
            case 7: length = Pick(rng); break;
            case 8: location = "sub/../w.bin"; break;
            case 9: location = "missing.bin"; break;
            case 10: location = "."; break;
            case 11: location = "w.bin\0x"; break;
            case 12:
                Directory.CreateDirectory(Path.Combine(folder, $"d{n}"));
                Directory.CreateSymbolicLink(Path.Combine(folder, $"d{n}", "up"), "..");
                location = $"d{n}/up/w.bin";
                break;
            default:
                File.CreateSymbolicLink(Path.Combine(folder, $"loop{n}"), Path.Combine(folder, $"loop{n}"));
                location = $"loop{n}";
                break;
        }
        t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        if (rng.Next(8) == 0) t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "w.bin" });
        t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = rng.Next(10) == 0 ? "x" : offset.ToString() });
        if (length is { } l) t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = l.ToString() });
        return $"external data of '{t.Name}' at '{location}' (scenario {scenario})";
    }

    [DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
    private static extern int MakeFifo([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint mode);

    private static string OpType(ModelProto m, Random rng)
    {
        var n = PickFrom(m.Graph.Node, rng);
        var before = n.OpType;
        if (rng.Next(6) == 0)
        {
            n.OpType = MicrosoftOps[rng.Next(MicrosoftOps.Length)];
            n.Domain = "com.microsoft";
        }
        else
        {
            n.OpType = OpTypes[rng.Next(OpTypes.Length)];
            if (rng.Next(10) == 0) n.Domain = new[] { "com.onnxattention", "junk", "ai.onnx" }[rng.Next(3)];
        }
        return $"'{n.Name}' {before} -> {n.Domain}.{n.OpType}";
    }

    private static string Wiring(ModelProto m, Random rng)
    {
        var g = m.Graph;
        var n = PickFrom(g.Node, rng);
        var values = Values(g).ToList();
        switch (rng.Next(7))
        {
            case 0 when n.Input.Count > 0:
                n.Input[rng.Next(n.Input.Count)] = rng.Next(5) == 0 ? "" : PickFrom(values, rng);
                return $"an input of '{n.Name}' rewired";
            case 1 when n.Input.Count > 0:
                n.Input.RemoveAt(n.Input.Count - 1);
                return $"last input of '{n.Name}' removed";
            case 2:
                n.Input.Add(PickFrom(values, rng));
                return $"input added to '{n.Name}'";
            case 3:
                n.Output.Add(rng.Next(3) == 0 ? PickFrom(values, rng) : n.Name + "_extra");
                return $"output added to '{n.Name}'";
            case 4 when n.Output.Count > 0:
                n.Output.RemoveAt(n.Output.Count - 1);
                return $"last output of '{n.Name}' removed";
            case 5 when n.Output.Count > 0 && n.Input.Count > 0:
                n.Input[0] = n.Output[0];
                return $"'{n.Name}' reads its own output (a cycle)";
            default:
                var other = PickFrom(g.Node, rng);
                if (n.Output.Count > 0 && other.Input.Count > 0) other.Input[rng.Next(other.Input.Count)] = n.Output[^1];
                return $"'{other.Name}' reads '{n.Name}'";
        }
    }

    private static string Chain(ModelProto m, Random rng)
    {
        var g = m.Graph;
        var n = PickFrom(g.Node.Where(n => n.Input.Count > 0).ToList(), rng);
        var slot = rng.Next(n.Input.Count);
        var length = rng.Next(50) == 0 ? 2000 + rng.Next(6000) : 1 + rng.Next(20);
        var op = rng.Next(4) == 0 ? "Cast" : "Identity";
        var current = n.Input[slot];
        for (var i = 0; i < length; i++)
        {
            var next = $"chain_{slot}_{i}_{n.Name}";
            var node = new NodeProto { OpType = op, Name = next };
            node.Input.Add(current);
            node.Output.Add(next);
            if (op == "Cast") node.Attribute.Add(new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = (long)DataType.Float });
            g.Node.Add(node);
            current = next;
        }
        n.Input[slot] = current;
        if (rng.Next(30) == 0)
        {
            // Many dead nodes and initializers: model checks must stay linear.
            var extra = 5000 + rng.Next(30_000);
            for (var i = 0; i < extra; i++)
            {
                var init = new TensorProto { Name = $"pad_init_{i}", DataType = (int)DataType.Float };
                init.FloatData.Add(i);
                g.Initializer.Add(init);
                var node = new NodeProto { OpType = "Identity", Name = $"pad_{i}" };
                node.Input.Add(init.Name);
                node.Output.Add($"pad_out_{i}");
                g.Node.Add(node);
            }
            return $"{op} chain of {length} before '{n.Name}' and {extra} dead nodes";
        }
        return $"{op} chain of {length} before '{n.Name}'";
    }

    private static string TensorData(ModelProto m, Random rng)
    {
        var g = m.Graph;
        var small = g.Initializer.Where(t => t.RawData.Length <= 64 || t.Int64Data.Count + t.FloatData.Count <= 8).ToList();
        var t = PickFrom(small.Count > 0 && rng.Next(3) > 0 ? small : g.Initializer.ToList(), rng);
        switch (rng.Next(5))
        {
            case 0:
                if (t.DataType == (int)DataType.Int64 && t.RawData.Length >= 8)
                {
                    var bytes = t.RawData.ToByteArray();
                    BitConverter.GetBytes(Pick(rng)).CopyTo(bytes, 8 * rng.Next(bytes.Length / 8));
                    t.RawData = ByteString.CopyFrom(bytes);
                }
                else if (t.Int64Data.Count > 0) t.Int64Data[rng.Next(t.Int64Data.Count)] = Pick(rng);
                else t.FloatData.Add(float.NaN);
                return $"value of '{t.Name}' changed";
            case 1:
                t.RawData = ByteString.CopyFrom(t.RawData.Span[..rng.Next(t.RawData.Length + 1)]);
                return $"raw data of '{t.Name}' truncated";
            case 2:
                t.RawData = ByteString.CopyFrom([.. t.RawData.Span, .. new byte[1 + rng.Next(16)]]);
                return $"raw data of '{t.Name}' extended";
            case 3:
                t.Int64Data.Add(Pick(rng));
                return $"typed data added to '{t.Name}'";
            default:
                t.DataType = rng.Next(0, 20);
                return $"data type of '{t.Name}' set to {t.DataType}";
        }
    }

    private static string Delete(ModelProto m, Random rng)
    {
        var g = m.Graph;
        switch (rng.Next(5))
        {
            case 0:
                var n = PickFrom(g.Node, rng);
                g.Node.Remove(n);
                return $"node '{n.Name}' deleted";
            case 1:
                var t = PickFrom(g.Initializer, rng);
                g.Initializer.Remove(t);
                return $"initializer '{t.Name}' deleted";
            case 2:
                var i = PickFrom(g.Input, rng);
                g.Input.Remove(i);
                return $"graph input '{i.Name}' deleted";
            case 3:
                var o = PickFrom(g.Output, rng);
                g.Output.Remove(o);
                return $"graph output '{o.Name}' deleted";
            default:
                g.ValueInfo.Clear();
                return "value_info deleted";
        }
    }

    private static string Duplicate(ModelProto m, Random rng)
    {
        var g = m.Graph;
        switch (rng.Next(4))
        {
            case 0:
                var n = PickFrom(g.Node, rng);
                g.Node.Add(n.Clone());
                return $"node '{n.Name}' duplicated";
            case 1:
                var t = PickFrom(g.Initializer, rng);
                g.Initializer.Add(t.Clone());
                return $"initializer '{t.Name}' duplicated";
            case 2:
                var i = PickFrom(g.Input, rng);
                g.Input.Add(i.Clone());
                return $"graph input '{i.Name}' duplicated";
            default:
                var o = PickFrom(g.Output, rng);
                g.Output.Add(o.Clone());
                return $"graph output '{o.Name}' duplicated";
        }
    }

    private static string ValueType(ModelProto m, Random rng)
    {
        var g = m.Graph;
        var v = PickFrom(g.Input.Concat(g.Output).Where(v => v.Type?.TensorType is not null).ToList(), rng);
        if (rng.Next(3) == 0) v.Type.TensorType.Shape = null;
        else v.Type.TensorType.ElemType = rng.Next(0, 20);
        if (rng.Next(5) == 0) m.OpsetImport.Clear();
        return $"type of '{v.Name}' changed";
    }
}
