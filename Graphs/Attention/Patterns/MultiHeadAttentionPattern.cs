using OnnxAttention.Graphs.Attention.Matchers;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Attention.Patterns;

/// <summary>
/// ONNX Runtime's contrib operator com.microsoft.MultiHeadAttention, as ORT's transformer optimizer and optimum
/// write it: inputs query [B, S, H*d], key [B, L, H*d], value [B, L, H*dv], bias [H*d + H*d + H*dv] (added to the
/// projections), key_padding_mask, attention_bias [B|1, H|1, S, total] (added to the scaled scores), past_key and
/// past_value [B, H, past, d], past_sequence_length, cache_indirection; outputs output [B, S, H*dv], present_key,
/// present_value, qk. Attributes num_heads, scale (0 or absent: 1/sqrt(d)), unidirectional (causal; with a past, query
/// i sees past + i + 1 keys), mask_filter_value (only used with key_padding_mask). Every head has its own keys and
/// values (no grouping). Variants no rule can take are reported with the reason: packed QKV or KV, keys given per
/// head, a key padding mask, a shared past/present buffer, beam-search cache indirection, a read qk output.
/// </summary>
public sealed class MultiHeadAttentionPattern : IAttentionPattern
{
    public const string Domain = "com.microsoft";

    public string Name => "com.microsoft.MultiHeadAttention";

    public IEnumerable<OneOf> Find(Graph graph, ValueShapes shapes)
    {
        var nodes = graph.Nodes.Where(n => n.Is("MultiHeadAttention", Domain)).ToList();
        if (nodes.Count == 0) yield break;
        var eval = new StaticEvaluator(graph, shapes);
        foreach (var node in nodes)
        {
            yield return Analyse(graph, eval, node);
        }
    }

    private OneOf Analyse(Graph g, StaticEvaluator eval, GraphNode node)
    {
        AttentionMiss Miss(string reason) => new(Name, node, reason);

        string q = node.Input(0), k = node.Input(1), v = node.Input(2);
        var heads = node.IntAttribute("num_heads", 0);
        if (heads <= 0) return Miss("the num_heads attribute is missing or not positive");
        var queryRank = eval.Shape(q)?.Length;
        if (queryRank == 5 || k.Length == 0)
        {
            return Miss("packed QKV (query [B, S, H, 3, d], no key or value input) is not supported; unpack it into query, key and value first");
        }
        var keyRank = eval.Shape(k)?.Length;
        if (keyRank == 5)
        {
            return Miss("packed KV (key [B, L, H, 2, d], no value input) is not supported; give key and value separately");
        }
        if (keyRank == 4)
        {
            return Miss($"the key '{k}' is given per head [B, H, L, d] (cross-attention onto precomputed keys), which is not supported");
        }
        if (queryRank is not 3 || keyRank is not 3 || eval.Shape(v)?.Length is not 3)
        {
            return Miss(queryRank is null || keyRank is null
                ? $"the ranks of '{q}' and '{k}' are unknown (run ONNX shape inference on the model first)"
                : $"query, key and value must be 3-D [batch, sequence, heads*dim]; '{q}' has rank {queryRank}, '{k}' rank {keyRank}");
        }
        if (node.Input(4) is { Length: > 0 } padding)
        {
            return Miss($"a key_padding_mask ('{padding}') is not supported: padding has no place in a replacement");
        }
        if (node.Input(8) is { Length: > 0 } sharedLength)
        {
            return Miss($"past and present share one buffer (past_sequence_length input '{sharedLength}'), which is not supported");
        }
        if (node.Input(9) is { Length: > 0 } indirection)
        {
            return Miss($"beam-search cache indirection ('{indirection}') is not supported");
        }
        if (node.Outputs.Count > 3 && node.Outputs[3] is { Length: > 0 } qk && (g.Consumers(qk).Count > 0 || g.IsGraphOutput(qk)))
        {
            return Miss($"the model reads the qk output '{qk}', which no rule reproduces");
        }

        var (qWidth, kWidth, vWidth) = (eval.Dim(q, 2), eval.Dim(k, 2), eval.Dim(v, 2));
        if (qWidth is null || kWidth is null || vWidth is null)
        {
            return Miss($"head sizes unknown: the model records no static last dimension for '{q}', '{k}' or '{v}' (run ONNX shape inference on it first)");
        }
        if (qWidth % heads != 0 || kWidth != qWidth || vWidth % heads != 0)
        {
            return Miss($"widths {qWidth} (query), {kWidth} (key), {vWidth} (value) do not split into {heads} heads with equal query and key sizes");
        }

        var causal = node.IntAttribute("unidirectional", 0) != 0;
        var mask = new MaskMatcher.Classified(false, null, null, "none");
        if (node.Input(5) is { Length: > 0 } bias)
        {
            mask = MaskMatcher.Classify(g, eval, bias);
        }
        var description = causal && !mask.Causal
            ? (mask.MaskValue is null ? "causal (unidirectional)" : $"causal (unidirectional) + {mask.Description}")
            : mask.Description;
        var cache = CacheMatcher.ForOperator(g, node, 6, 7, 1, 2);
        var type = eval.ElementType(q);
        return new AttentionMatch(Name, node, q, k, KeyLayout.Packed, v, node.Outputs[0],
            node.Attribute("scale") is { } s && s.F != 0 ? s.F : null, causal || mask.Causal, description,
            (int)heads, (int)heads, (int)(qWidth / heads), (int)(vWidth / heads))
        {
            QueryLayout = KeyLayout.Packed,
            ValueLayout = KeyLayout.Packed,
            OutputLayout = KeyLayout.Packed,
            MaskValue = mask.MaskValue,
            MaskReads = mask.MaskReads,
            Bias = node.Input(3) is { Length: > 0 } qkvBias ? new QkvBias(qkvBias, (int)qWidth, (int)kWidth, (int)vWidth) : null,
            OwnCache = cache.Own,
            OwnCacheWhy = cache.Why,
            Cache = cache.Cache,
            QueryLength = eval.Dim(q, 1),
            KeyLength = eval.Dim(k, 1),
            ElementType = type == TensorProto.Types.DataType.Undefined ? TensorProto.Types.DataType.Float : type,
        };
    }
}
