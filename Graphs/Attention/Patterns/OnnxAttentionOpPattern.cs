using OnnxAttention.Graphs.Attention.Matchers;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Attention.Patterns;

/// <summary>
/// The standard ONNX Attention operator (opset 23, 24): inputs Q, K, V, attn_mask, past_key, past_value and (24)
/// nonpad_kv_seqlen; outputs Y, present_key, present_value, qk_matmul_output. Q/K/V are either 4-D
/// [batch, heads, sequence, head_dim] or 3-D packed [batch, sequence, heads*head_dim] with q_num_heads and
/// kv_num_heads. Attributes is_causal, scale (default 1/sqrt(head_dim)), softcap, qk_matmul_output_mode and
/// softmax_precision carry over into the match. A past_key/past_value pair fed from graph inputs, whose presents
/// are graph outputs, is the model's KV cache and becomes the replacement's state (see <see cref="CacheMatcher"/>).
/// </summary>
public sealed class OnnxAttentionOpPattern : IAttentionPattern
{
    public string Name => "ONNX Attention operator";

    public IEnumerable<OneOf> Find(Graph graph, ValueShapes shapes)
    {
        var nodes = graph.Nodes.Where(n => n.Is("Attention")).ToList();
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
        var rank = eval.Shape(q)?.Length ?? eval.Shape(k)?.Length;
        long? hq, hkv, d, dv;
        KeyLayout layout;
        if (rank == 4)
        {
            layout = KeyLayout.Bhsd;
            (hq, hkv, d, dv) = (eval.Dim(q, 1), eval.Dim(k, 1), eval.Dim(q, 3), eval.Dim(v, 3));
        }
        else if (rank == 3)
        {
            layout = KeyLayout.Packed;
            hq = node.IntAttribute("q_num_heads", 0);
            hkv = node.IntAttribute("kv_num_heads", 0);
            if (hq <= 0 || hkv <= 0)
            {
                return Miss("3-D inputs need the q_num_heads and kv_num_heads attributes");
            }
            d = eval.Dim(q, 2) / hq;
            dv = eval.Dim(v, 2) / hkv;
        }
        else
        {
            return Miss(rank is null
                ? $"the rank of the query '{q}' is unknown (run ONNX shape inference on the model first)"
                : $"the query '{q}' has rank {rank}, expected 3 or 4");
        }
        if (hq is null || hkv is null || d is null || dv is null)
        {
            return Miss($"head counts unknown: the model records no static shapes for '{q}', '{k}' or '{v}' (run ONNX shape inference on it first)");
        }
        if (hkv == 0 || hq % hkv != 0)
        {
            return Miss($"{hq} query heads and {hkv} KV heads do not form grouped attention");
        }

        var causal = node.IntAttribute("is_causal", 0) != 0;
        var mask = node.Input(3);
        var reads = mask.Length > 0 ? MaskMatcher.DataDependency(g, mask) : null;
        var description = mask.Length == 0 ? (causal ? "causal" : "none")
            : (causal ? "causal + " : "") + (reads is null ? $"attn_mask '{mask}'" : $"attn_mask from graph input '{reads}'");
        string? Used(int output) =>
            node.Outputs.Count > output && node.Outputs[output] is { Length: > 0 } o && (g.Consumers(o).Count > 0 || g.IsGraphOutput(o)) ? o : null;
        var cache = CacheMatcher.ForOperator(g, node, 4, 5, 1, 2);
        var scale = node.Attribute("scale") is { } s ? (double?)s.F : null;
        var type = eval.ElementType(q);
        return new AttentionMatch(Name, node, q, k, layout, v, node.Outputs[0], scale, causal, description, (int)hq, (int)hkv, (int)d, (int)dv)
        {
            QueryLayout = layout,
            ValueLayout = layout,
            OutputLayout = layout,
            Softcap = node.FloatAttribute("softcap", 0),
            MaskValue = mask.Length > 0 ? mask : null,
            MaskReads = reads,
            OwnCache = cache.Own,
            OwnCacheWhy = cache.Why,
            Cache = cache.Cache,
            NonPadKvSeqLen = node.Input(6) is { Length: > 0 } nonPad ? nonPad : null,
            ScoresOutput = Used(3),
            ScoresOutputMode = node.IntAttribute("qk_matmul_output_mode", 0),
            SoftmaxPrecision = node.IntAttribute("softmax_precision", 0),
            QueryLength = eval.Dim(q, rank == 4 ? 2 : 1),
            KeyLength = eval.Dim(k, rank == 4 ? 2 : 1),
            ElementType = type == TensorProto.Types.DataType.Undefined ? TensorProto.Types.DataType.Float : type,
        };
    }
}
