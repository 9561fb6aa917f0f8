using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Building;

/// <summary>
/// Builds small ONNX models in code: declared inputs and outputs, initializers, nodes in any domain.
/// Node names default to "{op_type}_{n}" so ORT error messages point at a recognisable node.
/// </summary>
public sealed class ModelBuilder
{
    /// <summary>IR version 10 is what ONNX 1.16+ writes and ORT 1.31 reads.</summary>
    public const long IrVersion = 10;

    private readonly GraphProto _graph;
    private readonly Dictionary<string, long> _opsets = new();
    private int _nodeCount;

    public ModelBuilder(string graphName = "graph", int defaultOpset = 17)
    {
        _graph = new GraphProto { Name = graphName };
        _opsets[""] = defaultOpset;
    }

    /// <summary>Declares an opset (domain "" is the default ONNX domain).</summary>
    public ModelBuilder Opset(string domain, long version)
    {
        _opsets[domain] = version;
        return this;
    }

    public ModelBuilder Input(string name, TensorProto.Types.DataType type, params Dim[] shape)
    {
        _graph.Input.Add(ValueInfo(name, type, shape));
        return this;
    }

    /// <summary>Declares an input with an element type but no shape, so ORT leaves rank checks to the consumer.</summary>
    public ModelBuilder InputOfAnyShape(string name, TensorProto.Types.DataType type)
    {
        _graph.Input.Add(new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type } },
        });
        return this;
    }

    public ModelBuilder Output(string name, TensorProto.Types.DataType type, params Dim[] shape)
    {
        _graph.Output.Add(ValueInfo(name, type, shape));
        return this;
    }

    /// <summary>Declares an output with an element type but no shape (its shape follows the attributes and the call).</summary>
    public ModelBuilder OutputOfAnyShape(string name, TensorProto.Types.DataType type)
    {
        _graph.Output.Add(new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type } },
        });
        return this;
    }

    /// <summary>Records the shape of an intermediate value (what exporters write into value_info).</summary>
    public ModelBuilder ValueShape(string name, TensorProto.Types.DataType type, params Dim[] shape)
    {
        _graph.ValueInfo.Add(ValueInfo(name, type, shape));
        return this;
    }

    public ModelBuilder Initializer(TensorProto tensor)
    {
        _graph.Initializer.Add(tensor);
        return this;
    }

    /// <summary>Adds a node; an empty string in <paramref name="inputs"/> leaves an optional input out.</summary>
    public ModelBuilder Node(string opType, IEnumerable<string> inputs, IEnumerable<string> outputs,
        string domain = "", string? name = null, params AttributeProto[] attributes)
    {
        if (!_opsets.ContainsKey(domain))
        {
            throw new InvalidOperationException($"node {opType} uses domain '{domain}', which has no opset; call Opset first");
        }
        var node = new NodeProto { OpType = opType, Domain = domain, Name = name ?? $"{opType}_{_nodeCount}" };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
        _nodeCount++;
        return this;
    }

    public ModelProto Build(string producer = "OnnxAttention")
    {
        var model = new ModelProto { IrVersion = IrVersion, ProducerName = producer, Graph = _graph.Clone() };
        foreach (var (domain, version) in _opsets)
        {
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = domain, Version = version });
        }
        return model;
    }

    private static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, Dim[] shape)
    {
        var tensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = new TensorShapeProto() };
        foreach (var d in shape)
        {
            tensorType.Shape.Dim.Add(d.ToProto());
        }
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensorType } };
    }
}
