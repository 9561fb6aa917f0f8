using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Ir;

/// <summary>A node of the editable graph: the protobuf node plus identity, so rules can hold on to it.</summary>
public sealed class GraphNode(NodeProto proto)
{
    public NodeProto Proto { get; } = proto;

    public string OpType => Proto.OpType;

    public string Domain => Proto.Domain;

    public string Name => Proto.Name;

    public IList<string> Inputs => Proto.Input;

    public IList<string> Outputs => Proto.Output;

    /// <summary>The i-th input's value name, or "" when absent.</summary>
    public string Input(int i) => i < Proto.Input.Count ? Proto.Input[i] : "";

    public bool Is(string opType, string domain = "") =>
        Proto.OpType == opType && (Proto.Domain == domain || (domain.Length == 0 && Proto.Domain == "ai.onnx"));

    public AttributeProto? Attribute(string name) => Proto.Attribute.FirstOrDefault(a => a.Name == name);

    public long IntAttribute(string name, long fallback) => Attribute(name) is { } a ? a.I : fallback;

    public float FloatAttribute(string name, float fallback) => Attribute(name) is { } a ? a.F : fallback;

    public IReadOnlyList<long>? IntsAttribute(string name) => Attribute(name)?.Ints;

    public override string ToString() => $"{(Domain.Length > 0 ? Domain + "." : "")}{OpType} '{Name}'";
}
