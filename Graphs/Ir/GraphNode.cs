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

    /// <summary>
    /// Values the node reads: its inputs, then what its subgraphs (If, Loop, Scan) read from the graph around them,
    /// which ONNX lets a subgraph name without listing it as an input.
    /// </summary>
    public IEnumerable<string> Reads => Proto.Input.Where(i => i.Length > 0).Concat(OuterReads(Proto)).Distinct();

    /// <summary>The i-th input's value name, or "" when absent.</summary>
    public string Input(int i) => i < Proto.Input.Count ? Proto.Input[i] : "";

    public bool Is(string opType, string domain = "") =>
        Proto.OpType == opType && (Proto.Domain == domain || (domain.Length == 0 && Proto.Domain == "ai.onnx"));

    public AttributeProto? Attribute(string name) => Proto.Attribute.FirstOrDefault(a => a.Name == name);

    public long IntAttribute(string name, long fallback) => Attribute(name) is { } a ? a.I : fallback;

    public float FloatAttribute(string name, float fallback) => Attribute(name) is { } a ? a.F : fallback;

    public IReadOnlyList<long>? IntsAttribute(string name) => Attribute(name)?.Ints;

    private static IEnumerable<string> OuterReads(NodeProto node)
    {
        foreach (var sub in node.Attribute.Where(a => a.G is not null).Select(a => a.G).Concat(node.Attribute.SelectMany(a => a.Graphs)))
        {
            var inside = sub.Node.SelectMany(n => n.Output).Concat(sub.Input.Select(i => i.Name)).Concat(sub.Initializer.Select(t => t.Name)).ToHashSet();
            foreach (var read in sub.Node.SelectMany(n => n.Input.Where(i => i.Length > 0).Concat(OuterReads(n))).Concat(sub.Output.Select(o => o.Name)))
            {
                if (!inside.Contains(read)) yield return read;
            }
        }
    }

    public override string ToString() => $"{(Domain.Length > 0 ? Domain + "." : "")}{OpType} '{Name}'";
}
