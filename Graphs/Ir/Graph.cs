using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Ir;

/// <summary>
/// An editable view of a GraphProto: every value knows its producer and consumers, nodes can be added and removed
/// safely, and the result is written back in topological order. Indices are rebuilt lazily after edits; graphs
/// of exported decoders have thousands of nodes at most, so simplicity wins over incremental bookkeeping.
/// </summary>
public sealed class Graph
{
    private readonly GraphProto _proto;
    private readonly List<GraphNode> _nodes;
    private Dictionary<string, GraphNode>? _producers;
    private Dictionary<string, List<GraphNode>>? _consumers;
    private int _freshCounter;

    public Graph(GraphProto proto)
    {
        _proto = proto;
        _nodes = proto.Node.Select(n => new GraphNode(n)).ToList();
        Initializers = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
        foreach (var t in proto.Initializer)
        {
            if (!Initializers.TryAdd(t.Name, t)) throw new GraphException($"initializer '{t.Name}' is defined more than once");
        }
    }

    public IReadOnlyList<GraphNode> Nodes => _nodes;

    public Dictionary<string, TensorProto> Initializers { get; }

    public IList<ValueInfoProto> Inputs => _proto.Input;

    public IList<ValueInfoProto> Outputs => _proto.Output;

    /// <summary>Types and shapes the model records for intermediate values.</summary>
    public IList<ValueInfoProto> ValueInfo => _proto.ValueInfo;

    public string Name => _proto.Name;

    public bool IsGraphInput(string value) => _proto.Input.Any(i => i.Name == value) && !Initializers.ContainsKey(value);

    public bool IsGraphOutput(string value) => _proto.Output.Any(o => o.Name == value);

    public GraphNode? Producer(string value)
    {
        _producers ??= BuildProducers();
        return _producers.GetValueOrDefault(value);
    }

    public IReadOnlyList<GraphNode> Consumers(string value)
    {
        _consumers ??= BuildConsumers();
        return _consumers.TryGetValue(value, out var list) ? list : [];
    }

    /// <summary>The only consumer of <paramref name="value"/>, or null when it has none, several, or is a graph output.</summary>
    public GraphNode? SoleConsumer(string value)
    {
        var consumers = Consumers(value);
        return consumers.Count == 1 && !IsGraphOutput(value) ? consumers[0] : null;
    }

    /// <summary>A constant's value: an initializer or the output of a Constant node with a tensor value.</summary>
    public TensorProto? Constant(string value)
    {
        if (Initializers.TryGetValue(value, out var init))
        {
            return init;
        }
        var producer = Producer(value);
        return producer is not null && producer.Is("Constant") ? producer.Attribute("value")?.T : null;
    }

    /// <summary>A value name not used anywhere in the graph yet.</summary>
    public string FreshName(string hint)
    {
        _producers ??= BuildProducers();
        _consumers ??= BuildConsumers();
        string name;
        do
        {
            name = $"{hint}__{_freshCounter++}";
        }
        while (_producers.ContainsKey(name) || _consumers.ContainsKey(name) || Initializers.ContainsKey(name) || IsGraphInput(name));
        return name;
    }

    /// <summary>Adds a node, keeping built indices up to date: a swap adds hundreds of nodes to graphs of any size.</summary>
    public GraphNode Add(NodeProto node)
    {
        var n = new GraphNode(node);
        _nodes.Add(n);
        if (_producers is null || _consumers is null || node.Output.Any(o => o.Length > 0 && _producers.ContainsKey(o)))
        {
            Invalidate(); // a value produced twice is reported when the index is rebuilt
            return n;
        }
        foreach (var output in node.Output.Where(o => o.Length > 0)) _producers[output] = n;
        foreach (var input in n.Reads)
        {
            if (!_consumers.TryGetValue(input, out var list)) _consumers[input] = list = [];
            list.Add(n);
        }
        return n;
    }

    /// <summary>Initializers are not in the producer or consumer indices, so adding one leaves them valid.</summary>
    public void AddInitializer(TensorProto tensor) => Initializers[tensor.Name] = tensor;

    /// <summary>Makes every consumer of <paramref name="oldValue"/> (and a graph output of that name) use <paramref name="newValue"/>.</summary>
    public void ReplaceUses(string oldValue, string newValue)
    {
        if (IsGraphOutput(oldValue))
        {
            // A graph output keeps its public name: the old producer's output is renamed out of the way (it
            // becomes dead), and the new value is renamed to the output, readers of either following along.
            var producer = Producer(newValue) ?? throw new GraphException($"cannot route graph output '{oldValue}' to '{newValue}', which has no producer");
            if (Producer(oldValue) is { } old)
            {
                Rename(old.Outputs, oldValue, FreshName(oldValue + "_replaced"));
            }
            Rename(producer.Outputs, newValue, oldValue);
            foreach (var node in _nodes)
            {
                Rename(node.Inputs, newValue, oldValue);
                RenameOuterReads(node.Proto, newValue, oldValue);
            }
            Invalidate();
            return;
        }
        foreach (var node in Consumers(oldValue).ToList())
        {
            Rename(node.Inputs, oldValue, newValue);
            RenameOuterReads(node.Proto, oldValue, newValue);
        }
        Invalidate();
    }

    /// <summary>Renames an outer value inside a node's subgraphs, down to where a subgraph defines that name itself.</summary>
    private static void RenameOuterReads(NodeProto node, string from, string to)
    {
        foreach (var sub in node.Attribute.Where(a => a.G is not null).Select(a => a.G).Concat(node.Attribute.SelectMany(a => a.Graphs)))
        {
            if (sub.Node.Any(n => n.Output.Contains(from)) || sub.Input.Any(i => i.Name == from) || sub.Initializer.Any(t => t.Name == from)) continue;
            foreach (var inner in sub.Node)
            {
                Rename(inner.Input, from, to);
                RenameOuterReads(inner, from, to);
            }
            foreach (var output in sub.Output.Where(o => o.Name == from)) output.Name = to;
        }
    }

    private static void Rename(IList<string> names, string from, string to)
    {
        for (var i = 0; i < names.Count; i++)
        {
            if (names[i] == from) names[i] = to;
        }
    }

    /// <summary>
    /// Removes nodes, refusing when a value they produce is still read by a node that stays or is a graph output:
    /// removing them would leave a dangling edge.
    /// </summary>
    public void Remove(IReadOnlyCollection<GraphNode> nodes)
    {
        var doomed = new HashSet<GraphNode>(nodes);
        foreach (var node in doomed)
        {
            foreach (var output in node.Outputs.Where(o => o.Length > 0))
            {
                if (IsGraphOutput(output))
                {
                    throw new GraphException($"cannot remove {node}: its output '{output}' is a graph output");
                }
                var reader = Consumers(output).FirstOrDefault(c => !doomed.Contains(c));
                if (reader is not null)
                {
                    throw new GraphException($"cannot remove {node}: its output '{output}' is still read by {reader}");
                }
            }
        }
        _nodes.RemoveAll(doomed.Contains);
        Invalidate();
    }

    /// <summary>Removes nodes and initializers that no longer contribute to any graph output. Returns how many nodes went.</summary>
    public int RemoveDeadCode()
    {
        var live = new HashSet<GraphNode>();
        var needed = new Stack<string>(Outputs.Select(o => o.Name));
        var seen = new HashSet<string>();
        while (needed.Count > 0)
        {
            var value = needed.Pop();
            if (!seen.Add(value)) continue;
            var producer = Producer(value);
            if (producer is null || !live.Add(producer)) continue;
            foreach (var input in producer.Reads) needed.Push(input);
        }
        var removed = _nodes.RemoveAll(n => !live.Contains(n));
        foreach (var name in Initializers.Keys.Where(k => !seen.Contains(k)).ToList())
        {
            Initializers.Remove(name);
        }
        Invalidate();
        return removed;
    }

    /// <summary>Nodes ordered so each comes after the producers of its inputs; a cycle is an error naming a node on it.</summary>
    public List<GraphNode> TopologicalOrder()
    {
        var indegree = new Dictionary<GraphNode, int>();
        foreach (var node in _nodes)
        {
            indegree[node] = node.Reads.Count(i => Producer(i) is not null);
        }
        var ready = new Queue<GraphNode>(_nodes.Where(n => indegree[n] == 0));
        var order = new List<GraphNode>(_nodes.Count);
        while (ready.Count > 0)
        {
            var node = ready.Dequeue();
            order.Add(node);
            foreach (var output in node.Outputs.Where(o => o.Length > 0).Distinct())
            {
                foreach (var consumer in Consumers(output).Distinct())
                {
                    if (--indegree[consumer] == 0) ready.Enqueue(consumer);
                }
            }
        }
        if (order.Count != _nodes.Count)
        {
            var placed = new HashSet<GraphNode>(order);
            var stuck = _nodes.First(n => !placed.Contains(n));
            throw new GraphException($"the graph has a cycle through {stuck}");
        }
        return order;
    }

    /// <summary>Writes the edited graph back into its GraphProto, nodes in topological order.</summary>
    public GraphProto ToProto()
    {
        var order = TopologicalOrder();
        _proto.Node.Clear();
        _proto.Node.AddRange(order.Select(n => n.Proto));
        _proto.Initializer.Clear();
        _proto.Initializer.AddRange(Initializers.Values);
        // Shapes recorded for intermediate values may no longer hold after a rewrite: keep only those still produced.
        var produced = new HashSet<string>(order.SelectMany(n => n.Outputs));
        var keep = _proto.ValueInfo.Where(v => produced.Contains(v.Name)).ToList();
        _proto.ValueInfo.Clear();
        _proto.ValueInfo.AddRange(keep);
        return _proto;
    }

    /// <summary>Call after editing a node's inputs or outputs in place, so producer and consumer indices are rebuilt.</summary>
    public void Invalidate()
    {
        _producers = null;
        _consumers = null;
    }

    private Dictionary<string, GraphNode> BuildProducers()
    {
        var map = new Dictionary<string, GraphNode>();
        foreach (var node in _nodes)
        {
            foreach (var output in node.Outputs.Where(o => o.Length > 0))
            {
                if (!map.TryAdd(output, node))
                {
                    throw new GraphException($"value '{output}' is produced twice: by {map[output]} and {node}");
                }
            }
        }
        return map;
    }

    private Dictionary<string, List<GraphNode>> BuildConsumers()
    {
        var map = new Dictionary<string, List<GraphNode>>();
        foreach (var node in _nodes)
        {
            foreach (var input in node.Reads)
            {
                if (!map.TryGetValue(input, out var list)) map[input] = list = [];
                list.Add(node);
            }
        }
        return map;
    }
}
