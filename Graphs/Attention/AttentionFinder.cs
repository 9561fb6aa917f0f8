using OnnxAttention.Graphs.Attention.Patterns;
using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Attention;

/// <summary>Runs every known attention pattern over a graph.</summary>
public static class AttentionFinder
{
    public static IReadOnlyList<IAttentionPattern> Patterns { get; } =
    [
        new MatMulSoftmaxPattern(),
        new OnnxAttentionOpPattern(),
        new MultiHeadAttentionPattern(),
        new GroupQueryAttentionPattern(),
    ];

    public sealed record Findings(IReadOnlyList<AttentionMatch> Matches, IReadOnlyList<AttentionMiss> Misses);

    /// <summary>Matches in the graph's topological order, so the i-th match is layer i.</summary>
    public static Findings Find(Graph graph, ValueShapes shapes)
    {
        var order = graph.TopologicalOrder().Select((n, i) => (n, i)).ToDictionary(x => x.n, x => x.i);
        var matches = new List<AttentionMatch>();
        var misses = new List<AttentionMiss>();
        foreach (var pattern in Patterns)
        {
            foreach (var outcome in pattern.Find(graph, shapes))
            {
                if (outcome.Match is { } m) matches.Add(m);
                else if (outcome.Miss is { } miss) misses.Add(miss);
            }
        }
        return new Findings(matches.OrderBy(m => order[m.Anchor]).ToList(), misses);
    }
}
