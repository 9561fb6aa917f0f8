using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.Registration;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Every replacement by one of our operators, driven by the operator's <see cref="OperatorContract{TAttributes}"/>:
/// pack Q, K, V into [B, T, H*d] (whatever layout the model's attention had), run the operator with one per-layer
/// state input and output per state of its contract (a position state is fed from the model-wide
/// <see cref="PositionOffset.InputName"/> input instead of a per-layer counter), write the output back in the
/// model's layout, reroute. A replacement only says which operator and which attributes.
/// </summary>
internal abstract class StatefulReplacement<TAttributes> : IAttentionReplacement
{
    protected abstract OperatorContract<TAttributes> Contract { get; }

    /// <summary>The node's attributes for <paramref name="m"/>: the rule's, with the match's heads and scale.</summary>
    protected abstract TAttributes Attributes(AttentionMatch m);

    public virtual string? Refusal(AttentionMatch match) =>
        AttentionRequirements.CausalMemory(match) ?? AttentionRequirements.NoSoftcap(match);

    public virtual int RequiredOpset(AttentionMatch match) => match.KeyPadding is null ? 0 : PaddingFeed.Opset;

    /// <summary>
    /// The value wired to further input <paramref name="spec"/> of the contract (see
    /// <see cref="OperatorContract{TAttributes}.FurtherInputs"/>), or "" to leave it out. The token mask is fed from the
    /// model's attention_mask when the match honours padding; a replacement with inputs of its own overrides this.
    /// </summary>
    protected virtual string FurtherInput(Graph graph, AttentionMatch m, TensorSpec spec, string hint) =>
        spec.Layout == BatchLayout.TokenMask && m.KeyPadding is { } padding ? PaddingFeed.TokenMask(graph, padding) : "";

    public IReadOnlyList<StateTensor> Replace(Graph graph, AttentionMatch m, int layer, Dim batch)
    {
        var hint = $"layers.{layer}.attention";
        var q = PackedLayout.Pack(graph, m.Query, m.QueryLayout, hint + ".q");
        var k = PackedLayout.Pack(graph, m.Key, m.KeyLayout, hint + ".k");
        var v = PackedLayout.Pack(graph, m.Value, m.ValueLayout, hint + ".v");
        var a = Attributes(m);
        var contract = Contract;
        var node = new NodeProto { OpType = contract.Name, Domain = OperatorRegistry.Domain, Name = $"{hint}.{contract.Name}" };
        node.Input.AddRange([q, k, v]);
        var y = graph.FreshName(hint + ".out");
        node.Output.Add(y);
        var states = new List<StateTensor>();
        for (var i = 0; i < contract.States.Count; i++)
        {
            var spec = contract.States[i];
            if (spec.IsPosition)
            {
                // With padding a row's memory stands at its real tokens, which the attention_mask counts.
                node.Input.Add(m.KeyPadding is { } padding ? PaddingFeed.RealTokensBefore(graph, padding, q)
                    : PositionFeed(graph, q, hint, perRow: !spec.AcceptsSharedPosition));
                node.Output.Add(""); // the operator's own position output is not needed: the host advances the shared one
                continue;
            }
            var state = new StateTensor($"{spec.Past}.{layer}", $"{spec.Present}.{layer}", TensorProto.Types.DataType.Float,
                [batch, .. contract.Tail(i, a, m.HeadDim, m.ValueHeadDim).Select(d => (Dim)d)], InPlace: spec.InPlace, TokenRows: spec.TokenRows);
            node.Input.Add(state.Past);
            node.Output.Add(state.Present);
            states.Add(state);
        }
        node.Input.AddRange(contract.FurtherInputs(OnnxAttention.Operators.Interop.OrtElementType.Float).Select(f => FurtherInput(graph, m, f, hint)));
        while (node.Input[^1].Length == 0) node.Input.RemoveAt(node.Input.Count - 1);
        while (node.Output.Count > 1 && node.Output[^1].Length == 0) node.Output.RemoveAt(node.Output.Count - 1);
        node.Attribute.AddRange(contract.AttributeValues(a).Select(x => Attr.For(x.Spec, x.Value)));
        graph.Add(node);
        graph.ReplaceUses(m.Output, PackedLayout.ToLayout(graph, y, m.OutputLayout, m.QueryHeads, m.ValueHeadDim, hint + ".y"));
        return states;
    }

    /// <summary>The tokens already seen, int64 [batch] (or [1] when the operator takes one position for all rows).</summary>
    private static string PositionFeed(Graph graph, string packedQuery, string hint, bool perRow)
    {
        var rows = PositionOffset.Rows(graph);
        if (!perRow) return rows;
        var batch = graph.FreshName(hint + ".batch");
        graph.Add(GraphEdits.Node("Shape", [packedQuery], batch, Attr.Int("start", 0), Attr.Int("end", 1)));
        var perRowName = graph.FreshName(hint + ".position_rows");
        graph.Add(GraphEdits.Node("Expand", [rows, batch], perRowName));
        return perRowName;
    }
}
