using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Attention.Matchers;

/// <summary>
/// Recognises a KV cache a model keeps as graph inputs and outputs, and says whether a swap can turn it into the
/// replacement's state: the past tensors must be graph inputs that nothing else reads for their values (their
/// shape may be read: exporters derive positions and masks from the past length), and the joined keys and values
/// must leave the graph as outputs, which is how the model carries the cache from one call to the next.
/// </summary>
public static class CacheMatcher
{
    /// <summary>Exactly one of <see cref="Cache"/> (can become state) and <see cref="Own"/> (cannot, with <see cref="Why"/>) is set, or neither (no cache).</summary>
    public sealed record Outcome(KvCache? Cache, string? Own, string? Why)
    {
        public static readonly Outcome None = new(null, null, null);
    }

    /// <summary>An operator taking past_key/past_value inputs and giving present_key/present_value outputs.</summary>
    public static Outcome ForOperator(Graph g, GraphNode node, int pastKey, int pastValue, int presentKey, int presentValue)
    {
        string pk = node.Input(pastKey), pv = node.Input(pastValue);
        string? Used(int output) =>
            node.Outputs.Count > output && node.Outputs[output] is { Length: > 0 } o && (g.Consumers(o).Count > 0 || g.IsGraphOutput(o)) ? o : null;
        string? prk = Used(presentKey), prv = Used(presentValue);
        if (pk.Length == 0 && pv.Length == 0)
        {
            return (prk ?? prv) is { } present ? new(null, present, "it outputs its keys and values as a cache but takes no past") : Outcome.None;
        }
        if (pk.Length == 0 || pv.Length == 0)
        {
            return new(null, pk.Length > 0 ? pk : pv, "only one of past_key and past_value is given");
        }
        if ((PastProblem(g, pk, node) ?? PastProblem(g, pv, node)) is { } why)
        {
            return new(null, pk, why);
        }
        if (prk is null || prv is null || !g.IsGraphOutput(prk) || !g.IsGraphOutput(prv))
        {
            return new(null, pk, "no present_key and present_value graph outputs carry it to the next call");
        }
        if (g.Consumers(prk).Count > 0 || g.Consumers(prv).Count > 0)
        {
            return new(null, pk, "its present outputs are also read inside the graph");
        }
        return new(new KvCache(pk, pv, prk, prv, KeyLayout.Bhsd), null, null);
    }

    /// <summary>
    /// Keys (and values) written Concat(past, new) along the sequence axis of <paramref name="layout"/>, with the
    /// past a graph input, as Hugging Face exports with past_key_values do. Null when the key is no such Concat.
    /// </summary>
    public static (string NewKey, string NewValue, Outcome Outcome)? ForConcat(Graph g, string key, string value, KeyLayout layout)
    {
        if (Split(g, key, layout) is not { } k) return null;
        if (Split(g, value, layout) is not { } v)
        {
            return (key, value, new(null, k.Past, "the keys are joined onto a past input but the values are not"));
        }
        if ((PastProblem(g, k.Past, k.Concat) ?? PastProblem(g, v.Past, v.Concat)) is { } why)
        {
            return (key, value, new(null, k.Past, why));
        }
        if (Present(g, key) is not { } presentKey || Present(g, value) is not { } presentValue)
        {
            return (key, value, new(null, k.Past, "the joined keys and values are not graph outputs (no present to carry the cache to the next call)"));
        }
        return (k.New, v.New, new(new KvCache(k.Past, v.Past, presentKey, presentValue, layout), null, null));
    }

    private static (string Past, string New, GraphNode Concat)? Split(Graph g, string joined, KeyLayout layout)
    {
        if (g.Producer(joined) is not { } concat || !concat.Is("Concat") || concat.Inputs.Count != 2 || !g.IsGraphInput(concat.Input(0)))
        {
            return null;
        }
        var axis = concat.IntAttribute("axis", 0);
        var sequenceAxis = layout == KeyLayout.Bshd ? 1 : 2;
        return axis == sequenceAxis || axis == sequenceAxis - 4 ? (concat.Input(0), concat.Input(1), concat) : null;
    }

    /// <summary>The graph output that is <paramref name="joined"/> itself or an Identity of it.</summary>
    private static string? Present(Graph g, string joined)
    {
        if (g.IsGraphOutput(joined)) return joined;
        return g.Consumers(joined).FirstOrDefault(c => c.Is("Identity") && g.IsGraphOutput(c.Outputs[0]))?.Outputs[0];
    }

    /// <summary>Null when <paramref name="past"/> is a graph input read only by <paramref name="user"/> and for its shape.</summary>
    private static string? PastProblem(Graph g, string past, GraphNode user)
    {
        if (!g.IsGraphInput(past)) return $"'{past}' is computed in the graph, not a graph input";
        var other = g.Consumers(past).FirstOrDefault(c => c != user && !c.Is("Shape"));
        return other is null ? null : $"'{past}' is also read by {other}";
    }
}
