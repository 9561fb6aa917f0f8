using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.Registration;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// The common shape of every replacement: pack Q, K, V into [B, T, H*d] (whatever layout the model's attention had), run one of our operators with per-layer
/// float state tensors (and, where the operator wants it, the position taken from the model-wide
/// <see cref="PositionOffset.InputName"/> input instead of a per-layer counter), write the output back in the
/// model's layout, reroute.
/// </summary>
internal abstract class StatefulReplacement : IAttentionReplacement
{
    /// <summary>A state input of the operator: a float state tensor, or the shared position.</summary>
    protected sealed record Slot(StateTensor? State, bool Position = false);

    protected abstract string OpName { get; }

    /// <summary>The operator's inputs after query, key, value, in order.</summary>
    protected abstract IReadOnlyList<Slot> Slots(AttentionMatch m, int layer, Dim batch);

    protected abstract AttributeProto[] Attributes(AttentionMatch m);

    /// <summary>Whether the operator needs the position as [batch] (a [1] input is expanded), or takes [1] as it is.</summary>
    protected virtual bool PositionPerRow => true;

    public IReadOnlyList<StateTensor> Replace(Graph graph, AttentionMatch m, int layer, Dim batch)
    {
        var hint = $"layers.{layer}.attention";
        var q = PackedLayout.Pack(graph, m.Query, m.QueryLayout, hint + ".q");
        var k = PackedLayout.Pack(graph, m.Key, m.KeyLayout, hint + ".k");
        var v = PackedLayout.Pack(graph, m.Value, m.ValueLayout, hint + ".v");
        var slots = Slots(m, layer, batch);
        var node = new NodeProto { OpType = OpName, Domain = OperatorRegistry.Domain, Name = $"{hint}.{OpName}" };
        node.Input.AddRange([q, k, v]);
        var y = graph.FreshName(hint + ".out");
        node.Output.Add(y);
        foreach (var slot in slots)
        {
            if (slot.Position)
            {
                node.Input.Add(PositionFeed(graph, q, hint));
                node.Output.Add(""); // the operator's own position output is not needed: the host advances the shared one
            }
            else
            {
                node.Input.Add(slot.State!.Past);
                node.Output.Add(slot.State.Present);
            }
        }
        while (node.Output.Count > 1 && node.Output[^1].Length == 0) node.Output.RemoveAt(node.Output.Count - 1);
        node.Attribute.AddRange(Attributes(m));
        graph.Add(node);
        graph.ReplaceUses(m.Output, PackedLayout.ToLayout(graph, y, m.OutputLayout, m.QueryHeads, m.ValueHeadDim, hint + ".y"));
        return slots.Where(s => s.State is not null).Select(s => s.State!).ToList();
    }

    /// <summary>The tokens already seen, int64 [batch] (or [1]), from the model-wide position input.</summary>
    private string PositionFeed(Graph graph, string packedQuery, string hint)
    {
        var rows = PositionOffset.Rows(graph);
        if (!PositionPerRow) return rows;
        var batch = graph.FreshName(hint + ".batch");
        graph.Add(GraphEdits.Node("Shape", [packedQuery], batch, Attr.Int("start", 0), Attr.Int("end", 1)));
        var perRow = graph.FreshName(hint + ".position_rows");
        graph.Add(GraphEdits.Node("Expand", [rows, batch], perRow));
        return perRow;
    }

    protected static StateTensor Float(string name, int layer, params Dim[] shape) =>
        new($"past_{name}.{layer}", $"present_{name}.{layer}", TensorProto.Types.DataType.Float, shape, InPlace: true);
}
