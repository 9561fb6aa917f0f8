using Google.Protobuf;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Io;

/// <summary>
/// Loads and saves ONNX models, including tensors kept in external data files. External data must live inside the
/// model's folder: a location that is absolute or climbs out of it (.., symlinks) is refused before anything is read.
/// </summary>
public static class ModelFile
{
    /// <summary>protobuf refuses single messages over 2 GiB; bigger models must use external data.</summary>
    private const long MaxProtoBytes = int.MaxValue;

    /// <summary>Nesting deeper than this is not a real model (subgraphs of subgraphs ...).</summary>
    private const int RecursionLimit = 100;

    public static ModelProto Load(string path)
    {
        var file = new FileInfo(path);
        if (!file.Exists)
        {
            if (Directory.Exists(path)) throw new GraphException($"model file '{path}' is a folder; give the .onnx file");
            throw new GraphException($"model file '{path}' does not exist");
        }
        if (file.Length > MaxProtoBytes)
        {
            throw new GraphException($"model file '{path}' is {file.Length} bytes; a single ONNX protobuf can hold at most {MaxProtoBytes}");
        }
        ModelProto model;
        var bytes = RegularFile.ReadAll(path, MaxProtoBytes, "model file");
        try
        {
            using var coded = CodedInputStream.CreateWithLimits(new MemoryStream(bytes, writable: false), bytes.Length + 1, RecursionLimit);
            model = ModelProto.Parser.ParseFrom(coded);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new GraphException($"'{path}' is not a valid ONNX model: {e.Message}");
        }
        if (model.Graph is null)
        {
            throw new GraphException($"'{path}' holds no graph");
        }
        ModelChecks.Validate(model, $"'{path}'");
        LoadExternalData(model, file.DirectoryName ?? ".");
        return model;
    }

    public static void Save(ModelProto model, string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);
        var size = model.CalculateSize();
        if (size > MaxProtoBytes)
        {
            throw new GraphException($"the model is {size} bytes, over protobuf's 2 GiB limit for one file");
        }
        using var stream = File.Create(path);
        model.WriteTo(stream);
    }

    /// <summary>Reads every externally stored tensor into raw_data, after checking each location stays in the folder.</summary>
    private static void LoadExternalData(ModelProto model, string modelDirectory)
    {
        var tensors = model.Graph.Initializer.Where(t => t.DataLocation == TensorProto.Types.DataLocation.External).ToList();
        if (tensors.Count == 0) return;
        var root = RealPath(Path.GetFullPath(modelDirectory));
        // Check all locations first: nothing is read if any one of them points outside the folder.
        var plans = tensors.Select(t => (Tensor: t, Plan: Plan(t, root))).ToList();
        foreach (var (tensor, plan) in plans)
        {
            var expected = ExpectedBytes(tensor);
            if (expected is { } e && plan.Length is { } l && e != l)
            {
                throw new GraphException($"tensor '{tensor.Name}': shape and type need {e} bytes but its external data holds {l}");
            }
            var bytes = RegularFile.ReadRange(plan.Path, plan.Offset, plan.Length, expected ?? MaxProtoBytes, $"tensor '{tensor.Name}': external data");
            if (expected is { } e2 && e2 != bytes.Length)
            {
                throw new GraphException($"tensor '{tensor.Name}': shape and type need {e2} bytes but its external data holds {bytes.Length}");
            }
            tensor.RawData = ByteString.CopyFrom(bytes);
            tensor.DataLocation = TensorProto.Types.DataLocation.Default;
            tensor.ExternalData.Clear();
        }
    }

    private sealed record ExternalPlan(string Path, long Offset, long? Length);

    private static ExternalPlan Plan(TensorProto tensor, string root)
    {
        var entries = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var e in tensor.ExternalData)
        {
            if (!entries.TryAdd(e.Key, e.Value)) throw new GraphException($"tensor '{tensor.Name}': external data key '{e.Key}' is given more than once");
        }
        if (!entries.TryGetValue("location", out var location) || location.Length == 0)
        {
            throw new GraphException($"tensor '{tensor.Name}' is marked external but names no location");
        }
        if (location.Contains('\0'))
        {
            throw new GraphException($"tensor '{tensor.Name}': external data location contains a NUL character");
        }
        if (Path.IsPathRooted(location))
        {
            throw new GraphException($"tensor '{tensor.Name}': external data location '{location}' is absolute; only paths inside the model's folder are allowed");
        }
        var rootWithSeparator = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
        var full = Path.GetFullPath(Path.Combine(root, location));
        if (!full.StartsWith(rootWithSeparator, StringComparison.Ordinal))
        {
            throw new GraphException($"tensor '{tensor.Name}': external data location '{location}' leaves the model's folder '{root}'");
        }
        // Every component is resolved, not just the last: a folder that is a symbolic link leads out as surely as a file.
        var resolved = RealPath(full);
        if (!resolved.StartsWith(rootWithSeparator, StringComparison.Ordinal))
        {
            throw new GraphException($"tensor '{tensor.Name}': external data location '{location}' leaves the model's folder '{root}' (through a symbolic link, to '{resolved}')");
        }
        if (!File.Exists(resolved))
        {
            throw new GraphException($"tensor '{tensor.Name}': external data file '{location}' does not exist");
        }
        long offset = entries.TryGetValue("offset", out var o) ? ParseLong(o, tensor, "offset") : 0;
        long? length = entries.TryGetValue("length", out var l) ? ParseLong(l, tensor, "length") : null;
        return new ExternalPlan(resolved, offset, length);
    }

    /// <summary>
    /// <paramref name="path"/> (absolute) with every symbolic link in every component followed, as the OS does when
    /// opening it; more than 40 links (a loop) is refused, as the OS does.
    /// </summary>
    private static string RealPath(string path)
    {
        var sep = Path.DirectorySeparatorChar;
        var pending = new Stack<string>(path.Split(sep, StringSplitOptions.RemoveEmptyEntries).Reverse());
        var parts = new List<string>();
        var links = 0;
        while (pending.Count > 0)
        {
            var c = pending.Pop();
            if (c == ".") continue;
            if (c == "..")
            {
                if (parts.Count > 0) parts.RemoveAt(parts.Count - 1);
                continue;
            }
            var target = new FileInfo(sep + string.Join(sep, parts.Append(c))).LinkTarget;
            if (target is null)
            {
                parts.Add(c);
                continue;
            }
            if (++links > 40) throw new GraphException($"'{path}' goes through more than 40 symbolic links");
            if (Path.IsPathRooted(target)) parts.Clear();
            foreach (var t in target.Split(sep, StringSplitOptions.RemoveEmptyEntries).Reverse()) pending.Push(t);
        }
        return sep + string.Join(sep, parts);
    }

    private static long ParseLong(string s, TensorProto t, string what) =>
        long.TryParse(s, out var v) && v >= 0 ? v : throw new GraphException($"tensor '{t.Name}': external data {what} '{s}' is not a non-negative integer");

    private static long? ExpectedBytes(TensorProto t)
    {
        var elementBytes = (TensorProto.Types.DataType)t.DataType switch
        {
            TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Int32 or TensorProto.Types.DataType.Uint32 => 4,
            TensorProto.Types.DataType.Double or TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Uint64 => 8,
            TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16 or TensorProto.Types.DataType.Int16 or TensorProto.Types.DataType.Uint16 => 2,
            TensorProto.Types.DataType.Int8 or TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Bool => 1,
            _ => 0,
        };
        if (elementBytes == 0) return null;
        long count = 1;
        foreach (var d in t.Dims)
        {
            if (d < 0) throw new GraphException($"tensor '{t.Name}' has a negative dimension {d}");
            count = checked(count * d);
        }
        return checked(count * elementBytes);
    }
}
