using OnnxAttention.Graphs.Attention.Matchers;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Attention.Patterns;

/// <summary>
/// ONNX Runtime's contrib operator com.microsoft.GroupQueryAttention, as ORT GenAI's model builder writes decoders:
/// inputs query [B, S, Hq*d], key and value [B, S, Hkv*d], past_key/past_value [B, Hkv, past (or max), d],
/// seqlens_k [B] (total length - 1 per row), total_sequence_length, cos_cache/sin_cache [max, rotary_dim/2],
/// position_ids, attention_bias, head_sink, k_scale/v_scale, q_norm_weight/k_norm_weight; outputs output
/// [B, S, Hq*d], present_key, present_value, output_qk. Attributes num_heads, kv_num_heads, scale (default
/// 1/sqrt(d)), softcap, causal (default 1), local_window_size w (query i sees keys i - w + 1 .. i: w keys, itself
/// included, as measured on ORT 1.31.1 CPU),
/// do_rotary and rotary_interleaved (the rotary embedding applied inside at positions past + i).
/// <para>
/// seqlens_k and total_sequence_length are bookkeeping when they are computed from shapes (every row full); when
/// they read a graph input (an attention mask: per-row lengths, i.e. padding) the match says so and rules refuse.
/// Variants no rule can take are reported with the reason: packed QKV, position_ids, head sinks or smooth softmax,
/// a quantized cache, Q/K norms, a read output_qk.
/// </para>
/// </summary>
public sealed class GroupQueryAttentionPattern : IAttentionPattern
{
    public string Name => "com.microsoft.GroupQueryAttention";

    public IEnumerable<OneOf> Find(Graph graph, ValueShapes shapes)
    {
        var nodes = graph.Nodes.Where(n => n.Is("GroupQueryAttention", MultiHeadAttentionPattern.Domain)).ToList();
        if (nodes.Count == 0) yield break;
        var eval = new StaticEvaluator(graph, shapes);
        foreach (var node in nodes)
        {
            yield return Analyse(graph, shapes, eval, node);
        }
    }

    private OneOf Analyse(Graph g, ValueShapes shapes, StaticEvaluator eval, GraphNode node)
    {
        AttentionMiss Miss(string reason) => new(Name, node, reason);

        string q = node.Input(0), k = node.Input(1), v = node.Input(2);
        var heads = node.IntAttribute("num_heads", 0);
        var kvHeads = node.IntAttribute("kv_num_heads", 0);
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0)
        {
            return Miss($"num_heads {heads} and kv_num_heads {kvHeads} do not form grouped attention");
        }
        // Packed QKV (the onnxruntime-genai builder's standard form): query [B, S, (Hq + 2 Hkv) d], no key or value.
        var packed = k.Length == 0 && v.Length == 0;
        if (!packed && (k.Length == 0 || v.Length == 0))
        {
            return Miss("a key without a value (or a value without a key) is not supported");
        }
        foreach (var (index, what) in new[] { (9, "position_ids"), (11, "head_sink"), (12, "k_scale"), (13, "v_scale"), (14, "q_norm_weight"), (15, "k_norm_weight") })
        {
            if (node.Input(index) is { Length: > 0 } given)
            {
                return Miss($"the {what} input ('{given}') is not supported");
            }
        }
        if (node.IntAttribute("smooth_softmax", -1) == 1) return Miss("smooth softmax (an extra 1 in the softmax denominator) is not supported");
        foreach (var quant in new[] { "k_quant_type", "v_quant_type" })
        {
            if (node.Attribute(quant) is { } a && a.S.ToStringUtf8() is var kind && kind != "NONE")
            {
                return Miss($"a quantized KV cache ({quant} {kind}) is not supported");
            }
        }
        if (node.Outputs.Count > 3 && node.Outputs[3] is { Length: > 0 } qk && (g.Consumers(qk).Count > 0 || g.IsGraphOutput(qk)))
        {
            return Miss($"the model reads the output_qk output '{qk}', which no rule reproduces");
        }
        if (eval.Shape(q)?.Length is { } rank && rank != 3)
        {
            return Miss($"the query '{q}' has rank {rank}, expected 3 [batch, sequence, heads*dim]");
        }
        var (qWidth, kWidth, vWidth) = (eval.Dim(q, 2), eval.Dim(k, 2), eval.Dim(v, 2));
        if (packed && qWidth is { } packedWidth)
        {
            if (packedWidth % (heads + 2 * kvHeads) != 0)
            {
                return Miss($"packed QKV of width {packedWidth} does not split into {heads} query and 2 x {kvHeads} KV heads of one size");
            }
            var size = packedWidth / (heads + 2 * kvHeads);
            (qWidth, kWidth, vWidth) = (size * heads, size * kvHeads, size * kvHeads);
        }
        if (qWidth is null)
        {
            return Miss($"head size unknown: the model records no static last dimension for '{q}' (run ONNX shape inference on it first)");
        }
        if (qWidth % heads != 0 || (kWidth is { } kw && kw != qWidth / heads * kvHeads) || (vWidth is { } vw && vw != qWidth / heads * kvHeads))
        {
            return Miss($"widths {qWidth} (query), {kWidth} (key), {vWidth} (value) do not split into {heads} query and {kvHeads} KV heads of one size");
        }
        var d = (int)(qWidth / heads);

        RotarySpec? rotary = null;
        if (node.IntAttribute("do_rotary", 0) != 0)
        {
            if (node.Input(7) is not { Length: > 0 } cos || node.Input(8) is not { Length: > 0 } sin)
            {
                return Miss("do_rotary is set but cos_cache or sin_cache is missing");
            }
            var half = eval.Dim(cos, 1);
            if (half is { } h && (2 * h > d || eval.Dim(sin, 1) is { } hs && hs != h))
            {
                return Miss($"rotary tables of width {h} do not fit head size {d}");
            }
            rotary = new RotarySpec(cos, sin, node.IntAttribute("rotary_interleaved", 0) != 0, half is { } rh ? (int)(2 * rh) : 0);
        }

        var causal = node.IntAttribute("causal", 1) != 0;
        var window = node.IntAttribute("local_window_size", -1);
        var mask = new MaskMatcher.Classified(false, null, null, "none");
        if (node.Input(10) is { Length: > 0 } bias)
        {
            mask = MaskMatcher.Classify(g, eval, bias);
        }
        var description = causal && !mask.Causal
            ? (mask.MaskValue is null ? "causal" : $"causal + {mask.Description}")
            : mask.Description;
        var lengths = MaskMatcher.DataDependency(g, node.Input(5)) ?? (node.Input(6).Length > 0 ? MaskMatcher.DataDependency(g, node.Input(6)) : null);
        string? padding = null;
        if (lengths is not null && MaskProbe.RowLengthsFromMask(g, shapes, node.Input(5), node.Input(6), lengths))
        {
            padding = lengths;
            lengths = null;
            description += $" + padding from graph input '{padding}' (row lengths, run to check)";
        }
        var cache = CacheMatcher.ForOperator(g, node, 3, 4, 1, 2);
        var type = eval.ElementType(q);
        return new AttentionMatch(Name, node, q, packed ? q : k, KeyLayout.Packed, packed ? q : v, node.Outputs[0],
            node.Attribute("scale") is { } s && s.F != 0 ? s.F : null, causal || mask.Causal, description,
            (int)heads, (int)kvHeads, d, d)
        {
            QueryLayout = KeyLayout.Packed,
            ValueLayout = KeyLayout.Packed,
            OutputLayout = KeyLayout.Packed,
            Softcap = node.FloatAttribute("softcap", 0),
            MaskValue = mask.MaskValue,
            MaskReads = mask.MaskReads,
            Rotary = rotary,
            LocalWindow = window > 0 ? (int)window : 0,
            KeyLengthsReads = lengths,
            KeyPadding = padding,
            PaddingFromRowLengths = padding is not null,
            PackedQkv = packed,
            OwnCache = cache.Own,
            OwnCacheWhy = cache.Why,
            Cache = cache.Cache,
            QueryLength = eval.Dim(q, 1),
            KeyLength = eval.Dim(packed ? q : k, 1),
            ElementType = type == TensorProto.Types.DataType.Undefined ? TensorProto.Types.DataType.Float : type,
        };
    }
}
