using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Writes a matched attention as ONNX's standard Attention operator with the same maths (scale, softcap,
/// is_causal, mask, grouped KV heads) plus a KV cache: past_key/past_value inputs [batch, kv_heads, past, d]
/// and present_key/present_value outputs [batch, kv_heads, past + new, d]. ORT aligns causal masking with a past
/// so query i of the new chunk sees past + i + 1 keys, which makes token-by-token runs equal whole-sequence ones.
/// 4-D inputs are used unless the query is packed ([batch, seq, heads*d], the operator's 3-D form).
/// </summary>
internal sealed class SoftmaxReplacement : IAttentionReplacement
{
    public const int Opset = 23;

    /// <summary>nonpad_kv_seqlen is an opset-24 input.</summary>
    public const int OpsetWithNonPad = 24;

    public string? Refusal(AttentionMatch m)
    {
        if (m.OwnCache is { } cache)
        {
            return $"the attention already keeps its own KV cache ('{cache}'); it is left as it is" + (m.OwnCacheWhy is { } why ? $" ({why})" : "");
        }
        if (m.LocalWindow > 0)
        {
            return $"the attention is a local window of {m.LocalWindow} keys, which ONNX's Attention with a growing cache does not restrict; window:{m.LocalWindow} reproduces it";
        }
        if (m.KeyLengthsReads is { } lengths)
        {
            return $"the attention takes per-row key lengths from the values of graph input '{lengths}' (padding), which this rule does not carry";
        }
        return AttentionRequirements.CacheWithoutDataMask(m);
    }

    public int RequiredOpset(AttentionMatch m) => m.NonPadKvSeqLen is null ? Opset : OpsetWithNonPad;

    public IReadOnlyList<StateTensor> Replace(Graph graph, AttentionMatch m, int layer, Dim batch)
    {
        var hint = $"layers.{layer}.attention";
        var target = m.QueryLayout == KeyLayout.Packed ? KeyLayout.Packed : KeyLayout.Bhsd;
        var q = Convert(graph, m.Query, m.QueryLayout, target, m.QueryHeads, m.HeadDim, hint + ".q");
        var k = Convert(graph, m.Key, m.KeyLayout, target, m.KvHeads, m.HeadDim, hint + ".k");
        var v = Convert(graph, m.Value, m.ValueLayout, target, m.KvHeads, m.ValueHeadDim, hint + ".v");
        var key = new StateTensor($"past_key.{layer}", $"present_key.{layer}", m.ElementType,
            [batch, m.KvHeads, StateTensor.PastLength, m.HeadDim], GrowingAxis: 2);
        var value = new StateTensor($"past_value.{layer}", $"present_value.{layer}", m.ElementType,
            [batch, m.KvHeads, StateTensor.PastLength, m.ValueHeadDim], GrowingAxis: 2);
        var y = graph.FreshName(hint + ".softmax");
        var scores = m.ScoresOutput is null ? null : graph.FreshName(hint + ".scores");

        // With padding the model's own mask (causal part included) is passed whole, so the result equals the export's.
        var modelMask = m.KeyPadding is not null && (m.MaskValue is not null || m.MaskKeep is not null);
        var mask = m.KeyPadding is null ? m.MaskValue : modelMask ? PaddingMask(graph, m, hint) : KeyPaddingMask(graph, m.KeyPadding, m.ElementType, q, target == KeyLayout.Packed ? 1 : 2, hint);
        var causal = m.Causal && !modelMask;
        var node = new NodeProto { OpType = "Attention", Name = hint + ".Attention" };
        node.Input.AddRange([q, k, v, mask ?? "", key.Past, value.Past, m.NonPadKvSeqLen ?? ""]);
        while (node.Input[^1].Length == 0) node.Input.RemoveAt(node.Input.Count - 1);
        node.Output.AddRange([y, key.Present, value.Present]);
        if (scores is not null) node.Output.Add(scores);
        node.Attribute.Add(Attr.Int("is_causal", causal ? 1 : 0));
        node.Attribute.Add(Attr.Float("scale", (float)m.EffectiveScale));
        if (m.Softcap > 0) node.Attribute.Add(Attr.Float("softcap", (float)m.Softcap));
        if (target == KeyLayout.Packed)
        {
            node.Attribute.Add(Attr.Int("q_num_heads", m.QueryHeads));
            node.Attribute.Add(Attr.Int("kv_num_heads", m.KvHeads));
        }
        if (scores is not null) node.Attribute.Add(Attr.Int("qk_matmul_output_mode", m.ScoresOutputMode));
        if (m.SoftmaxPrecision != 0) node.Attribute.Add(Attr.Int("softmax_precision", m.SoftmaxPrecision));
        graph.Add(KeepsGroupQueryAttention(m, target, mask, modelMask, scores, causal) ? ShapeDispatch(graph, m, node, q, k, v, key, value, mask, hint) : node);

        graph.ReplaceUses(m.Output, Convert(graph, y, target, m.OutputLayout, m.QueryHeads, m.ValueHeadDim, hint + ".y"));
        if (scores is not null) graph.ReplaceUses(m.ScoresOutput!, scores);
        return [key, value];
    }

    /// <summary>
    /// Whether a GroupQueryAttention source can run on ORT's GroupQueryAttention kernel where that kernel takes the
    /// call: causal, no mask but the padding one this rule builds ([B, 1, S, past + S], its attention_bias), no scores
    /// output, equal key and value widths, float32/float16. The model depends on ORT's com.microsoft domain already,
    /// and on ORT's CPU provider that kernel is faster than the standard Attention-23 one (profile of the 100M
    /// genai-form Llama, 1024 tokens, 2-core VM: 1.87 s against 2.62 s per prefill, about 9% of the whole).
    /// </summary>
    private static bool KeepsGroupQueryAttention(AttentionMatch m, KeyLayout target, string? mask, bool modelMask, string? scores, bool causal) =>
        m.Anchor.Is("GroupQueryAttention", "com.microsoft") && target == KeyLayout.Packed && scores is null && causal &&
        (mask is null || m.KeyPadding is not null && !modelMask) &&
        m.NonPadKvSeqLen is null && m.SoftmaxPrecision == 0 && m.ValueHeadDim == m.HeadDim &&
        m.ElementType is TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Float16;

    /// <summary>
    /// If(batch > 1 and new > 1 and past > 0) the standard Attention <paramref name="general"/>, else the same
    /// attention on ORT's GroupQueryAttention. ORT 1.32's CPU GroupQueryAttention refuses a prompt continued from a
    /// past at batch > 1 ("batch_size must be 1 when sequence_length > 1 and past context is given"), which a host
    /// prefilling in pieces sends; every other call (a whole prompt, decode, batch 1) takes the faster kernel. The
    /// branches read the graph only through Identity ports made here, so later renames of the model's values (the
    /// state's names under genai, say) follow along outside the subgraphs.
    /// </summary>
    private static NodeProto ShapeDispatch(Graph g, AttentionMatch m, NodeProto general, string q, string k, string v, StateTensor key, StateTensor value, string? padding, string hint)
    {
        string Port(string outer)
        {
            var port = g.FreshName(hint + ".port");
            g.Add(GraphEdits.Node("Identity", [outer], port));
            return port;
        }

        // [batch - 1, new - 1, past]: all positive exactly when GroupQueryAttention would refuse the call.
        var rowsAndLength = g.FreshName(hint + ".batch_and_length");
        g.Add(GraphEdits.Node("Shape", [q], rowsAndLength, Attr.Int("start", 0), Attr.Int("end", 2)));
        var one = g.AddInt64Constant(hint + ".one", 1);
        var less = g.FreshName(hint + ".batch_and_length_less_one");
        g.Add(GraphEdits.Node("Sub", [rowsAndLength, one], less));
        var past = g.FreshName(hint + ".past_length");
        g.Add(GraphEdits.Node("Shape", [key.Past], past, Attr.Int("start", 2), Attr.Int("end", 3)));
        var all = g.FreshName(hint + ".dispatch_dims");
        g.Add(GraphEdits.Node("Concat", [less, past], all, Attr.Int("axis", 0)));
        var least = g.FreshName(hint + ".dispatch_min");
        g.Add(GraphEdits.Node("ReduceMin", [all], least, Attr.Int("keepdims", 1)));
        var continued = g.FreshName(hint + ".continued_batch_prompt");
        g.Add(GraphEdits.Node("Greater", [least, g.AddInt64Constant(hint + ".zero", 0)], continued));

        // seqlens_k = past + new - 1 for every row and total_sequence_length = past + new, from shapes: every row's
        // keys span the whole cache, and pads, wherever they are, are masked by the attention bias alone.
        var length = g.FreshName(hint + ".query_length");
        g.Add(GraphEdits.Node("Shape", [q], length, Attr.Int("start", 1), Attr.Int("end", 2)));
        var total = g.FreshName(hint + ".total_length");
        g.Add(GraphEdits.Node("Add", [past, length], total));
        var totalScalar = g.FreshName(hint + ".total_length_scalar");
        g.Add(GraphEdits.Node("Squeeze", [total, g.AddInt64Constant(hint + ".axis0", 0)], totalScalar));
        var totalInt = g.FreshName(hint + ".total_sequence_length");
        g.Add(GraphEdits.Node("Cast", [totalScalar], totalInt, Attr.Int("to", (int)TensorProto.Types.DataType.Int32)));
        var last = g.FreshName(hint + ".last_key");
        g.Add(GraphEdits.Node("Sub", [total, one], last));
        var batch = g.FreshName(hint + ".batch");
        g.Add(GraphEdits.Node("Shape", [q], batch, Attr.Int("start", 0), Attr.Int("end", 1)));
        var rows = g.FreshName(hint + ".seqlens_rows");
        g.Add(GraphEdits.Node("Expand", [last, batch], rows));
        var seqlens = g.FreshName(hint + ".seqlens_k");
        g.Add(GraphEdits.Node("Cast", [rows], seqlens, Attr.Int("to", (int)TensorProto.Types.DataType.Int32)));

        var ports = new Dictionary<string, string>();
        foreach (var outer in general.Input.Where(i => i.Length > 0).Distinct()) ports[outer] = Port(outer);
        var seqlensPort = Port(seqlens);
        var totalPort = Port(totalInt);

        var outputs = general.Output.ToList();
        GraphProto Branch(string name, NodeProto inner)
        {
            var branch = new GraphProto { Name = $"{hint}.{name}" };
            for (var i = 0; i < outputs.Count; i++)
            {
                var local = g.FreshName($"{hint}.{name}.out{i}");
                inner.Output.Add(local);
                var type = new TypeProto.Types.Tensor { ElemType = (int)m.ElementType };
                branch.Output.Add(new ValueInfoProto { Name = local, Type = new TypeProto { TensorType = type } });
            }
            branch.Node.Add(inner);
            return branch;
        }

        var attention = general.Clone();
        attention.Output.Clear();
        for (var i = 0; i < attention.Input.Count; i++)
        {
            if (attention.Input[i].Length > 0) attention.Input[i] = ports[attention.Input[i]];
        }

        var gqa = new NodeProto { OpType = "GroupQueryAttention", Domain = "com.microsoft", Name = hint + ".GroupQueryAttention" };
        gqa.Input.AddRange([ports[q], ports[k], ports[v], ports[key.Past], ports[value.Past], seqlensPort, totalPort]);
        // cos_cache, sin_cache and position_ids stay empty (the rotary was applied before); attention_bias is input 10.
        if (padding is not null) gqa.Input.AddRange(["", "", "", ports[padding]]);
        gqa.Attribute.Add(Attr.Int("num_heads", m.QueryHeads));
        gqa.Attribute.Add(Attr.Int("kv_num_heads", m.KvHeads));
        gqa.Attribute.Add(Attr.Float("scale", (float)m.EffectiveScale));
        if (m.Softcap > 0) gqa.Attribute.Add(Attr.Float("softcap", (float)m.Softcap));

        var dispatch = new NodeProto { OpType = "If", Name = hint + ".dispatch" };
        dispatch.Input.Add(continued);
        dispatch.Output.AddRange(outputs);
        dispatch.Attribute.Add(new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = Branch("general", attention) });
        dispatch.Attribute.Add(new AttributeProto { Name = "else_branch", Type = AttributeProto.Types.AttributeType.Graph, G = Branch("gqa", gqa) });
        return dispatch;
    }

    /// <summary>
    /// The additive mask the model applies, with the scores taken out: Where(keep, 0, fill) for a mask applied by
    /// selection, plus the additive term. Both are computed by the model from its attention_mask and shapes.
    /// </summary>
    private static string? PaddingMask(Graph g, AttentionMatch m, string hint)
    {
        var sum = m.MaskValue;
        if (m.MaskKeep is { } keep && m.MaskFill is { } fill)
        {
            var zero = g.FreshName(hint + ".mask_zero");
            g.Add(GraphEdits.Node("Sub", [fill, fill], zero));
            var selected = g.FreshName(hint + ".mask_where");
            g.Add(GraphEdits.Node("Where", [keep, zero, fill], selected));
            if (sum is null) return selected;
            var total = g.FreshName(hint + ".mask");
            g.Add(GraphEdits.Node("Add", [selected, sum], total));
            return total;
        }
        return sum;
    }

    /// <summary>
    /// An additive mask [B, 1, 1, past + S] from an attention mask input (1 = token, 0 = pad): 0 for tokens, the
    /// type's lowest finite value for pads (finite, as Hugging Face masks are, so a row of pads gives no NaN).
    /// </summary>
    private static string KeyPaddingMask(Graph g, string input, TensorProto.Types.DataType type, string query, int sequenceAxis, string hint)
    {
        var lowest = type == TensorProto.Types.DataType.Float16 ? (double)Half.MinValue : float.MinValue;
        var zero = Scalar(g, hint + ".pad_zero", type, 0);
        var pad = Scalar(g, hint + ".pad_lowest", type, lowest);
        var isPad = g.FreshName(hint + ".is_pad");
        g.Add(GraphEdits.Node("Equal", [input, Scalar(g, hint + ".mask_zero", null, 0, like: input)], isPad));
        var additive = g.FreshName(hint + ".pad_additive");
        g.Add(GraphEdits.Node("Where", [isPad, pad, zero], additive));
        var axes = g.AddInt64Constant(hint + ".pad_axes", 1, 2);
        var perKey = g.FreshName(hint + ".pad_keys");
        g.Add(GraphEdits.Node("Unsqueeze", [additive, axes], perKey));
        // ORT's Attention wants the mask's query axis at full length: [B, 1, S, past + S].
        var length = g.FreshName(hint + ".pad_query_length");
        g.Add(GraphEdits.Node("Shape", [query], length, Attr.Int("start", sequenceAxis), Attr.Int("end", sequenceAxis + 1)));
        var one = g.AddInt64Constant(hint + ".pad_one", 1);
        var shape = g.FreshName(hint + ".pad_shape");
        g.Add(GraphEdits.Node("Concat", [one, one, length, one], shape, Attr.Int("axis", 0)));
        var mask = g.FreshName(hint + ".pad_mask");
        g.Add(GraphEdits.Node("Expand", [perKey, shape], mask));
        return mask;
    }

    /// <summary>A scalar initializer of a float type, or (with <paramref name="like"/>) of that graph input's element type.</summary>
    private static string Scalar(Graph g, string hint, TensorProto.Types.DataType? type, double value, string? like = null)
    {
        var t = type ?? (TensorProto.Types.DataType)(g.Inputs.First(i => i.Name == like).Type.TensorType.ElemType);
        var name = g.FreshName(hint);
        var tensor = new TensorProto { Name = name, DataType = (int)t };
        switch (t)
        {
            case TensorProto.Types.DataType.Float16:
                tensor.Int32Data.Add(BitConverter.HalfToUInt16Bits((Half)value));
                break;
            case TensorProto.Types.DataType.Float:
                tensor.FloatData.Add((float)value);
                break;
            case TensorProto.Types.DataType.Double:
                tensor.DoubleData.Add(value);
                break;
            case TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Uint64:
                tensor.Int64Data.Add((long)value);
                break;
            case TensorProto.Types.DataType.Bool:
                tensor.Int32Data.Add(value != 0 ? 1 : 0);
                break;
            default:
                tensor.Int32Data.Add((int)value);
                break;
        }
        g.AddInitializer(tensor);
        return name;
    }

    private static string Convert(Graph g, string value, KeyLayout from, KeyLayout to, int heads, int headDim, string hint)
    {
        if (from == to) return value;
        return (from, to) switch
        {
            (KeyLayout.Bhsd, KeyLayout.Packed) or (KeyLayout.Bshd, KeyLayout.Packed) => PackedLayout.Pack(g, value, from, hint),
            (KeyLayout.Packed, KeyLayout.Bhsd) => PackedLayout.Unpack(g, value, heads, headDim, hint),
            (KeyLayout.Bshd, KeyLayout.Bhsd) => PackedLayout.Transpose(g, value, hint),
            _ => throw new GraphException($"no conversion from {from} to {to} layout for '{value}'"),
        };
    }
}
