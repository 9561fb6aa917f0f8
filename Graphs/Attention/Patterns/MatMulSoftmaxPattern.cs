using OnnxAttention.Graphs.Attention.Matchers;
using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Attention.Patterns;

/// <summary>
/// Attention written with plain ops, as the torch dynamo exporter emits both "eager" attention and decomposed
/// scaled_dot_product_attention, and as ONNX's Attention function expands (the _expanded conformance models):
/// <code>
///   Q ──(Mul s1)──┐
///                 MatMul ─(Mul|Div s3)─(softcap)─ Add(mask) ─ Softmax(-1) ─(IsNaN/Where guard)─ MatMul ─► output
///   K ─ K^T ─(Mul s2)┘                                                                       V ─┘
/// </code>
/// Scales may be computed from static shapes (1/sqrt(Shape(Q)[-1])), Identity nodes and Casts between float
/// types may sit anywhere on the chain, and K and V may come through a repeat of grouped KV heads, which is
/// undone. Attention without a mask is matched too (bidirectional); whether a rule can replace it is the rule's call.
/// </summary>
public sealed class MatMulSoftmaxPattern : IAttentionPattern
{
    public string Name => "MatMul/Softmax attention";

    public IEnumerable<OneOf> Find(Graph graph, ValueShapes shapes)
    {
        var nodes = graph.Nodes.Where(n => n.Is("Softmax")).ToList();
        if (nodes.Count == 0) yield break;
        var eval = new StaticEvaluator(graph, shapes);
        foreach (var softmax in nodes)
        {
            yield return Analyse(graph, shapes, eval, softmax);
        }
    }

    /// <summary>A key made by concatenating a graph input (past_key) with the new keys, not in the form a swap turns into state.</summary>
    private static string? OtherConcatCache(Graph g, string key) =>
        g.Producer(key) is { } concat && concat.Is("Concat") ? concat.Inputs.FirstOrDefault(g.IsGraphInput) : null;

    private OneOf Analyse(Graph g, ValueShapes shapes, StaticEvaluator eval, GraphNode softmax)
    {
        AttentionMiss Miss(string reason) => new(Name, softmax, reason);

        var axis = softmax.IntAttribute("axis", -1);
        var scoresRank = eval.Shape(softmax.Input(0))?.Length;
        if (axis != -1 && (scoresRank is null || axis != scoresRank - 1))
        {
            return Miss($"softmax over axis {axis}, not the last axis");
        }

        // Forward: an optional NaN guard (Where(IsNaN(p), 0, p)), casts, then MatMul(p, V). Other readers of the
        // probabilities (a model that outputs them) keep the original nodes alive; the output stays exact.
        var probabilities = softmax.Outputs[0];
        var readers = g.Consumers(probabilities);
        if (readers.Count == 2 && readers.FirstOrDefault(r => r.Is("IsNaN")) is { } isNan
            && readers.FirstOrDefault(r => r.Is("Where")) is { } guard && guard.Input(0) == isNan.Outputs[0] && guard.Input(2) == probabilities)
        {
            probabilities = guard.Outputs[0];
        }
        var (pv, _) = PassThroughMatcher.ForwardToMatMul(g, probabilities);
        if (pv is null)
        {
            return Miss("the softmax output does not feed a MatMul with the values");
        }

        // Backward: casts, mask, softcap, scale, then the score MatMul.
        var scores = PassThroughMatcher.Peel(g, softmax.Input(0));
        var mask = new MaskMatcher.Classified(false, null, null, "none");
        var additive = MaskMatcher.SplitAdd(g, scores, eval);
        if (additive is not null)
        {
            mask = MaskMatcher.Classify(g, eval, additive.Mask);
            scores = additive.Scores;
        }
        var where = WhereMaskMatcher.Peel(g, scores, eval);
        if (where is not null) scores = where.Scores;
        var (capped, softcap) = SoftcapMatcher.Peel(g, eval, PassThroughMatcher.Peel(g, scores));
        var (rawScores, outerScale) = ScaleMatcher.Peel(g, PassThroughMatcher.Peel(g, capped), eval);
        if (g.Producer(PassThroughMatcher.Peel(g, rawScores)) is not { } qk || !qk.Is("MatMul"))
        {
            return Miss("the softmax input is not Q·K^T (no score MatMul found behind the mask and scale)");
        }
        // A mask that reads an input's values or selects with Where is run to see what it is (causal, padding).
        string? keyPadding = null;
        if (where is not null || mask.MaskReads is not null)
        {
            var probe = MaskProbe.Run(g, shapes, softmax.Input(0), qk.Outputs[0]);
            if (probe.Verdict == MaskProbe.Verdict.Causal)
            {
                mask = new MaskMatcher.Classified(true, null, null, "causal (run to check)");
                where = null;
            }
            else if (probe.Verdict == MaskProbe.Verdict.CausalKeyPadding)
            {
                keyPadding = probe.PaddingInput;
                mask = new MaskMatcher.Classified(true, additive?.Mask, probe.PaddingInput, $"causal + padding from graph input '{probe.PaddingInput}' (run to check)");
            }
            else if (where is not null)
            {
                return Miss($"the scores pass through a Where (keep '{where.Keep}') whose mask is neither causal nor causal with padding when run");
            }
        }
        var (query, queryScale) = ScaleMatcher.Peel(g, qk.Input(0), eval);
        var (keyTransposed, keyScale) = ScaleMatcher.Peel(g, qk.Input(1), eval);
        query = PassThroughMatcher.Peel(g, query);
        if (KeyTransposeMatcher.Match(g, eval.Shape, keyTransposed, out var reason) is not { } key)
        {
            return Miss(reason);
        }
        var keyValue = key.Layout == KeyLayout.Bhsd ? PassThroughMatcher.Peel(g, RepeatKvMatcher.Peel(g, key.Key)) : key.Key;
        var value = PassThroughMatcher.Peel(g, RepeatKvMatcher.Peel(g, pv.Input(1)));

        // A KV cache kept as graph inputs joined onto the new keys and values: the replacement takes the new ones.
        var cache = CacheMatcher.Outcome.None;
        if (CacheMatcher.ForConcat(g, keyValue, value, key.Layout) is { } joined)
        {
            cache = joined.Outcome;
            if (cache.Cache is not null) (keyValue, value) = (joined.NewKey, joined.NewValue);
        }

        // Head counts and sizes from the recorded or inferred shapes.
        var hq = eval.Dim(query, 1);
        var dk = eval.Dim(query, 3);
        var hkv = key.Layout == KeyLayout.Bhsd ? eval.Dim(keyValue, 1) : eval.Dim(keyValue, 2);
        var dv = eval.Dim(value, 3);
        var hv = eval.Dim(value, 1);
        if (eval.Shape(query)?.Length is { } rank && rank != 4)
        {
            return Miss($"the query '{query}' has rank {rank}, expected [batch, heads, sequence, head_dim]");
        }
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
            scale, mask.Causal, mask.Description, (int)hq, (int)hkv, (int)dk, (int)dv)
        {
            Softcap = softcap,
            MaskValue = mask.MaskValue,
            MaskReads = mask.MaskReads,
            KeyPadding = keyPadding,
            MaskKeep = keyPadding is null ? null : where?.Keep,
            MaskFill = keyPadding is null ? null : where?.Fill,
            OwnCache = cache.Own ?? (cache.Cache is null ? OtherConcatCache(g, keyValue) : null),
            OwnCacheWhy = cache.Why,
            Cache = cache.Cache,
            QueryLength = eval.Dim(query, 2),
            KeyLength = eval.Dim(keyValue, key.Layout == KeyLayout.Bhsd ? 2 : 1),
            ElementType = eval.ElementType(keyValue) is var t && t != Onnx.TensorProto.Types.DataType.Undefined ? t : Onnx.TensorProto.Types.DataType.Float,
        };
    }
}
