using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Ir;

/// <summary>
/// Static shapes recorded in the model (graph inputs/outputs, value_info, initializers). Exporters such as torch's
/// dynamo exporter record every intermediate value; a dimension that is symbolic or missing reads as null.
/// </summary>
public sealed class ValueShapes
{
    private readonly Dictionary<string, long?[]> _shapes = new();

    public ValueShapes(GraphProto graph)
    {
        foreach (var v in graph.Input.Concat(graph.Output).Concat(graph.ValueInfo))
        {
            var shape = v.Type?.TensorType?.Shape;
            if (shape is null) continue;
            _shapes[v.Name] = shape.Dim.Select(d => d.HasDimValue ? d.DimValue : (long?)null).ToArray();
        }
        foreach (var t in graph.Initializer)
        {
            _shapes[t.Name] = t.Dims.Select(d => (long?)d).ToArray();
        }
    }

    /// <summary>The recorded shape, or null when the model does not say.</summary>
    public long?[]? Of(string value) => _shapes.GetValueOrDefault(value);

    public int? Rank(string value) => Of(value)?.Length;

    /// <summary>A dimension's fixed size, or null when unknown or symbolic.</summary>
    public long? Dim(string value, int axis)
    {
        var s = Of(value);
        if (s is null) return null;
        if (axis < 0) axis += s.Length;
        return axis >= 0 && axis < s.Length ? s[axis] : null;
    }
}
