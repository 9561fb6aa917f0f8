using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Ir;

/// <summary>The small building steps rewrites repeat: a single-output node, an int64 constant.</summary>
public static class GraphEdits
{
    /// <summary>A node of the default domain with one output named after it.</summary>
    public static NodeProto Node(string op, string[] inputs, string output, params AttributeProto[] attributes)
    {
        var n = new NodeProto { OpType = op, Name = output };
        n.Input.AddRange(inputs);
        n.Output.Add(output);
        n.Attribute.AddRange(attributes);
        return n;
    }

    /// <summary>Adds an int64 vector initializer under a fresh name and returns the name.</summary>
    public static string AddInt64Constant(this Graph g, string hint, params long[] values)
    {
        var name = g.FreshName(hint);
        g.AddInitializer(Tensors.Int64(name, values, values.Length));
        return name;
    }
}
