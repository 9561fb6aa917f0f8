using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Registration;
using OnnxAttention.Operators.WindowAttention;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// <c>window:W,keys=ids</c>: WindowAttention over the last W tokens, whose past keys and values are recomputed at
/// every call from the token ids the state keeps.
/// <para>
/// The ids are kept as WindowAttention keeps keys: a ring of W rows, position p in row p mod W, written by a
/// WindowAttention node of one head of size 1 whose keys are the ids as float32 (integers below 2^24 are exact), so
/// the ring follows the real cache's rules for prefill, split calls, token by token and padded rows; its attention
/// output is not read. Each call then (1) reads the ring in order of position: the window's tokens are positions
/// o .. o + W - 1 with o = max(position - W, 0), position o + i in row (o + i) mod W (rows not written yet hold id 0 at
/// positions the window does not reach); (2) computes their keys and values with a copy of the nodes that compute
/// the layer's keys and values, fed those ids and, in place of the model's position inputs, o (for the position
/// counter, past_sequence_length) or o + 0 .. W - 1 (for position_ids); (3) puts them back in ring order and
/// feeds them to the layer's WindowAttention as its past cache, whose present cache is dropped. Step (2) reads the
/// graph as it is once every layer is replaced and the positions offset, so it is built in <see cref="Finish"/>.
/// </para>
/// </summary>
internal sealed class RecomputedWindowReplacement(RecomputedWindowRule rule) : IAttentionReplacement
{
    public const string PastIds = "past_window_ids", PresentIds = "present_window_ids";

    /// <summary>Ids travel as float32 in the ring: exact below 2^24.</summary>
    public const long MaxVocabulary = 1L << 24;

    private sealed record Pending(AttentionMatch Match, int Layer, string Ids, string Position, string PastIds, string Keys, string Values);

    private Pending? _pending;

    public string? Refusal(AttentionMatch match) => AttentionRequirements.CausalMemory(match) ?? AttentionRequirements.NoSoftcap(match);

    /// <summary>Unsqueeze with its axes as an input is opset 13.</summary>
    public int RequiredOpset(AttentionMatch match) => 13;

    public IReadOnlyList<StateTensor> Replace(Graph graph, AttentionMatch m, int layer, Dim batch)
    {
        var hint = $"layers.{layer}.attention";
        var ids = graph.Inputs.FirstOrDefault(i => !graph.Initializers.ContainsKey(i.Name))?.Name
            ?? throw new GraphException("the model has no ids input");
        var tokenData = new HashSet<string> { ids, CacheAbsorption.PositionIds };
        var leaves = new HashSet<string>(tokenData) { PositionOffset.InputName };
        if (TokenLocalSubgraph.Refusal(graph, [m.Key, m.Value], leaves, tokenData) is { } why)
        {
            throw new GraphException($"layer {layer}: {rule.Spelling} recomputes keys and values from token ids, so they must depend on each token's id and position alone, but {why}");
        }
        if (m.KeyPadding is not null && TokenLocalSubgraph.Refusal(graph, [m.Key], tokenData, tokenData) is not null)
        {
            throw new GraphException($"layer {layer}: {rule.Spelling} needs a model with padding to take its positions from a position_ids input (a padded row's positions count its real tokens)");
        }
        if (graph.Consumers(ids).FirstOrDefault(n => n.Is("Gather") && graph.Constant(n.Input(0)) is { Dims.Count: > 0 } table && table.Dims[0] > MaxVocabulary) is { } lookup)
        {
            throw new GraphException($"layer {layer}: {rule.Spelling} keeps ids as float32, exact below {MaxVocabulary}; {lookup} has more rows");
        }

        var q = PackedLayout.Pack(graph, m.Query, m.QueryLayout, hint + ".q");
        var k = PackedLayout.Pack(graph, m.Key, m.KeyLayout, hint + ".k");
        var v = PackedLayout.Pack(graph, m.Value, m.ValueLayout, hint + ".v");
        var position = m.KeyPadding is { } padding ? PaddingFeed.RealTokensBefore(graph, padding, q) : PositionOffset.Rows(graph);
        var tokenMask = m.KeyPadding is { } mask ? PaddingFeed.TokenMask(graph, mask) : "";
        var state = new StateTensor($"{PastIds}.{layer}", $"{PresentIds}.{layer}", TensorProto.Types.DataType.Float, [batch, 1, rule.Window, 1]);

        // The ring of ids: keys (and, unread, queries and values) are the ids, one head of size 1.
        var idsFloat = Add(graph, "Cast", [ids], hint + ".ids_float", Attr.Int("to", (int)TensorProto.Types.DataType.Float));
        var idsColumn = Add(graph, "Unsqueeze", [idsFloat, graph.AddInt64Constant(hint + ".axis2", 2)], hint + ".ids_column");
        var noValues = Add(graph, "ConstantOfShape", [Add(graph, "Shape", [state.Past], hint + ".ids_shape")], hint + ".ids_values");
        var ringOutput = graph.FreshName(hint + ".ids_unread");
        graph.Add(Window(1, 1, 1f, [idsColumn, idsColumn, idsColumn, state.Past, noValues, position, tokenMask], [ringOutput, state.Present], hint + ".ids_ring"));

        var keys = graph.FreshName(hint + ".recomputed_key_cache");
        var values = graph.FreshName(hint + ".recomputed_value_cache");
        var y = graph.FreshName(hint + ".out");
        graph.Add(Window(m.QueryHeads, m.KvHeads, (float)m.EffectiveScale, [q, k, v, keys, values, position, tokenMask], [y], hint + "." + WindowAttentionOperator.OpName));
        graph.ReplaceUses(m.Output, PackedLayout.ToLayout(graph, y, m.OutputLayout, m.QueryHeads, m.ValueHeadDim, hint + ".y"));
        _pending = new Pending(m, layer, ids, position, state.Past, keys, values);
        return [state];
    }

    public void Finish(Graph graph)
    {
        if (_pending is not { } p) return;
        var (m, w) = (p.Match, (long)rule.Window);
        var hint = $"layers.{p.Layer}.attention.recompute";
        // o = max(position - W, 0), the position of the window's first token, per row ([batch] or [1]).
        var window = Scalar(graph, hint + ".window", w);
        var zero = Scalar(graph, hint + ".zero", 0);
        var start = Add(graph, "Max", [Add(graph, "Sub", [p.Position, window], hint + ".past_start"), zero], hint + ".start");
        var startColumn = Add(graph, "Unsqueeze", [start, graph.AddInt64Constant(hint + ".axis1", 1)], hint + ".start_column");
        var offsets = graph.AddInt64Constant(hint + ".offsets", [.. Enumerable.Range(0, rule.Window).Select(i => (long)i)]);
        var rowsAndWindow = Add(graph, "Concat", [Add(graph, "Shape", [p.PastIds], hint + ".batch", Attr.Int("start", 0), Attr.Int("end", 1)),
            graph.AddInt64Constant(hint + ".window_dim", w)], hint + ".rows_window", Attr.Int("axis", 0));
        // Positions of the window in order, [batch, W], and the ring row each lives in.
        var positions = Add(graph, "Expand", [Add(graph, "Add", [startColumn, offsets], hint + ".positions_rows"), rowsAndWindow], hint + ".positions");
        var ringRows = Add(graph, "Mod", [positions, window], hint + ".ring_rows");
        var ring = Add(graph, "Cast", [Add(graph, "Reshape", [p.PastIds, graph.AddInt64Constant(hint + ".ring_shape", 0, w)], hint + ".ring")],
            hint + ".ring_ids", Attr.Int("to", (int)TensorProto.Types.DataType.Int64));
        var ordered = Add(graph, "GatherElements", [ring, ringRows], hint + ".ids", Attr.Int("axis", 1));

        var substitutes = new Dictionary<string, string> { [p.Ids] = CastTo(graph, ordered, ElementType(graph, p.Ids), hint + ".ids_typed") };
        if (graph.IsGraphInput(PositionOffset.InputName))
        {
            substitutes[PositionOffset.InputName] = Add(graph, "Max", [Add(graph, "Sub", [PositionOffset.InputName, window], hint + ".counter_less"), zero], hint + ".counter");
        }
        if (graph.IsGraphInput(CacheAbsorption.PositionIds))
        {
            substitutes[CacheAbsorption.PositionIds] = CastTo(graph, positions, ElementType(graph, CacheAbsorption.PositionIds), hint + ".position_ids");
        }
        var copies = TokenLocalSubgraph.Clone(graph, [m.Key, m.Value], substitutes, hint);

        // Back to ring order: row r holds window index (r - o) mod W.
        var back = Add(graph, "Unsqueeze", [Add(graph, "Mod", [Add(graph, "Expand", [Add(graph, "Sub", [offsets, startColumn], hint + ".back_rows"), rowsAndWindow], hint + ".back_expanded"), window],
            hint + ".back"), graph.AddInt64Constant(hint + ".axis2", 2)], hint + ".back_index");
        foreach (var (copy, layout, dim, cache) in new[] { (copies[0], m.KeyLayout, m.HeadDim, p.Keys), (copies[1], m.ValueLayout, m.ValueHeadDim, p.Values) })
        {
            var packed = PackedLayout.Pack(graph, copy, layout, hint + ".packed");
            var inRing = Add(graph, "GatherND", [packed, back], hint + ".in_ring", Attr.Int("batch_dims", 1));
            var heads = PackedLayout.Unpack(graph, inRing, m.KvHeads, dim, hint + ".heads");
            graph.Add(GraphEdits.Node("Cast", [heads], cache, Attr.Int("to", (int)TensorProto.Types.DataType.Float)));
        }
    }

    private NodeProto Window(int queryHeads, int kvHeads, float scale, string[] inputs, string[] outputs, string name)
    {
        var contract = WindowAttentionContract.Contract;
        var node = new NodeProto { OpType = contract.Name, Domain = OperatorRegistry.Domain, Name = name };
        node.Input.AddRange(inputs);
        while (node.Input[^1].Length == 0) node.Input.RemoveAt(node.Input.Count - 1);
        node.Output.AddRange(outputs);
        var attributes = WindowAttentionAttributes.Validate(HeadAttributes.Validate(queryHeads, kvHeads, scale), rule.Window, 0, 0f);
        node.Attribute.AddRange(contract.AttributeValues(attributes).Select(x => Attr.For(x.Spec, x.Value)));
        return node;
    }

    private static string Add(Graph g, string op, string[] inputs, string hint, params AttributeProto[] attributes)
    {
        var name = g.FreshName(hint);
        g.Add(GraphEdits.Node(op, inputs, name, attributes));
        return name;
    }

    private static string Scalar(Graph g, string hint, long value)
    {
        var name = g.FreshName(hint);
        g.AddInitializer(Tensors.Int64(name, [value]));
        return name;
    }

    private static string CastTo(Graph g, string value, TensorProto.Types.DataType type, string hint) =>
        type == TensorProto.Types.DataType.Int64 ? value : Add(g, "Cast", [value], hint, Attr.Int("to", (int)type));

    private static TensorProto.Types.DataType ElementType(Graph g, string input) =>
        g.Inputs.First(i => i.Name == input).Type?.TensorType is { } t && t.ElemType != 0 ? (TensorProto.Types.DataType)t.ElemType : TensorProto.Types.DataType.Int64;
}
