using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Tests.Reliability;

/// <summary>Edits of a one-node test model's attributes that the typed node options cannot express.</summary>
public static class NodeAttributes
{
    /// <summary>Sets the node's integer attribute <paramref name="name"/> to <paramref name="value"/> (past int32 if need be).</summary>
    public static ModelProto WithInt(ModelProto model, string name, long value)
    {
        model.Graph.Node.Single().Attribute.Single(a => a.Name == name).I = value;
        return model;
    }
}
