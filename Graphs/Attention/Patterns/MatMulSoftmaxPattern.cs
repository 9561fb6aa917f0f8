using OnnxAttention.Graphs.Attention.Matchers;
using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Attention.Patterns;

/// <summary>
/// Attention written with plain ops, as the torch dynamo exporter emits both "eager" attention and decomposed
/// scaled_dot_product_attention:
/// <code>
///   Q ──(Mul s1)──┐
///                 MatMul ─(Mul|Div s3)─ Add(mask) ─ Softmax(-1) ─(IsNaN/Where guard)─ MatMul ─► output
///   K ─ K^T ─(Mul s2)┘                                                               V ─┘
/// </code>
/// K and V may come through a repeat of grouped KV heads, which is undone.
/// </summary>
public sealed class MatMulSoftmaxPattern : IAttentionPattern
{
    public string Name => "MatMul/Softmax attention";

    public IEnumerable<OneOf> Find(Graph graph, ValueShapes shapes)
    {
        foreach (var softmax in graph.Nodes.Where(n => n.Is("Softmax")).ToList())
        {
            yield return Analyse(graph, shapes, softmax);
        }
    }

    private OneOf Analyse(Graph g, ValueShapes shapes, GraphNode softmax)
    {
        AttentionMiss Miss(string reason) => new(Name, softmax, reason);

        var axis = softmax.IntAttribute("axis", -1);
        var scoresRank = shapes.Rank(softmax.Input(0));
        if (axis != -1 && (scoresRank is null || axis != scoresRank - 1))
        {
            return Miss($"softmax over axis {axis}, not the last axis");
        }

        // Forward: an optional NaN guard (Where(IsNaN(p), 0, p)), then MatMul(p, V).
        var probabilities = softmax.Outputs[0];
        var readers = g.Consumers(probabilities);
        if (readers.Count == 2 && readers.FirstOrDefault(r => r.Is("IsNaN")) is { } isNan
            && readers.FirstOrDefault(r => r.Is("Where")) is { } guard && guard.Input(0) == isNan.Outputs[0] && guard.Input(2) == probabilities)
        {
            probabilities = guard.Outputs[0];
            readers = g.Consumers(probabilities);
        }
        if (readers.Count != 1 || !readers[0].Is("MatMul") || readers[0].Input(0) != probabilities)
        {
            return Miss("the softmax output does not feed exactly one MatMul with the values");
        }
        var pv = readers[0];

        // Backward: mask, scale, then the score MatMul.
        var scores = softmax.Input(0);
        var mask = "none";
        var causal = false;
        if (MaskMatcher.SplitAdd(g, scores) is { } split)
        {
            if (MaskMatcher.DataDependency(g, split.Mask) is { } input)
            {
                return Miss($"the mask reads the values of graph input '{input}' (a padding mask), which the fixed-size memories cannot keep");
            }
            scores = split.Scores;
            mask = "causal (computed from shapes only)";
            causal = true;
        }
        var (rawScores, outerScale) = ScaleMatcher.Peel(g, scores);
        if (g.Producer(rawScores) is not { } qk || !qk.Is("MatMul"))
        {
            return Miss("the softmax input is not Q·K^T (no score MatMul found behind the mask and scale)");
        }
        if (!causal)
        {
            return Miss("no causal mask: bidirectional attention cannot be replaced by a causal memory");
        }
        var (query, queryScale) = ScaleMatcher.Peel(g, qk.Input(0));
        var (keyTransposed, keyScale) = ScaleMatcher.Peel(g, qk.Input(1));
        if (KeyTransposeMatcher.Match(g, shapes, keyTransposed, out var reason) is not { } key)
        {
            return Miss(reason);
        }
        var keyValue = key.Layout == KeyLayout.Bhsd ? RepeatKvMatcher.Peel(g, key.Key) : key.Key;
        var value = RepeatKvMatcher.Peel(g, pv.Input(1));

        // Head counts and sizes from the recorded shapes.
        var hq = shapes.Dim(query, 1);
        var dk = shapes.Dim(query, 3);
        var hkv = key.Layout == KeyLayout.Bhsd ? shapes.Dim(keyValue, 1) : shapes.Dim(keyValue, 2);
        var dv = shapes.Dim(value, 3);
        var hv = shapes.Dim(value, 1);
        if (hq is null || dk is null || hkv is null || dv is null || hv is null)
        {
            return Miss($"head counts unknown: the model records no static shapes for '{query}', '{keyValue}' or '{value}' (run ONNX shape inference on it first)");
        }
        if (hv != hkv || hq % hkv != 0)
        {
            return Miss($"{hq} query heads, {hkv} key heads and {hv} value heads do not form grouped attention");
        }
        var scale = outerScale * queryScale * keyScale;
        return new AttentionMatch(Name, softmax, query, keyValue, key.Layout, value, pv.Outputs[0],
            scale, causal, mask, (int)hq, (int)hkv, (int)dk, (int)dv);
    }
}
