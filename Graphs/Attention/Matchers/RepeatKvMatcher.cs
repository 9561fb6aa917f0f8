using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Attention.Matchers;

/// <summary>
/// Undoes the repeat of grouped KV heads (Hugging Face repeat_kv: Unsqueeze at axis 2, Expand, Reshape to
/// [B, H_kv*n_rep, T, d]) so the replacement sees the model's real KV heads.
/// </summary>
public static class RepeatKvMatcher
{
    public static string Peel(Graph g, string value)
    {
        if (g.Producer(value) is { } reshape && reshape.Is("Reshape")
            && g.Producer(reshape.Input(0)) is { } expand && expand.Is("Expand")
            && g.Producer(expand.Input(0)) is { } unsqueeze && unsqueeze.Is("Unsqueeze")
            && UnsqueezeAxes(g, unsqueeze) is [2])
        {
            return unsqueeze.Input(0);
        }
        return value;
    }

    private static long[]? UnsqueezeAxes(Graph g, GraphNode unsqueeze) =>
        unsqueeze.IntsAttribute("axes")?.ToArray() ?? ConstantReader.TryInts(g.Constant(unsqueeze.Input(1)));
}
