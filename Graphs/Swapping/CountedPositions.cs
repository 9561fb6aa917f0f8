using OnnxAttention.Graphs.Attention.Matchers;
using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Position embeddings a decoder looks up at positions counted from its KV cache's length (GPT-2's
/// arange(past, past + S), unsqueezed to [1, S]: one position for the whole batch) are looked up at each row's
/// <see cref="PositionOffset.Rows"/> + 0 .. S - 1 instead. Fed one number, the model computes what it computed before;
/// fed one per row, rows of different lengths (or padded rows, fed their count of real tokens) keep their own
/// positions, where the shared count would include another row's tokens or the row's pads.
/// </summary>
internal static class CountedPositions
{
    private static readonly (int B, int P, int S)[] ProbeSizes = [(2, 3, 4), (3, 5, 1)];

    /// <summary>
    /// Call before the cache's shapes are rewired (the probes bind the cache's inputs). A candidate is an int [1, S]
    /// tensor made from a Range that runs to past + 0 .. S - 1 at two probe sizes and that only Gather reads, as indices;
    /// other readers (rotary frequencies, say) keep the shared positions. Returns how many were replaced.
    /// </summary>
    public static int Apply(Graph g, string ids, ValueShapes shapes, string? mask)
    {
        var candidates = g.Nodes.Where(n => (n.Is("Unsqueeze") || n.Is("Reshape")) && g.Producer(n.Input(0)) is { } p && p.Is("Range")
            && g.Consumers(n.Outputs[0]) is { Count: > 0 } readers && readers.All(r => r.Is("Gather") && r.Input(1) == n.Outputs[0] && r.Input(0) != n.Outputs[0])).ToList();
        if (candidates.Count == 0) return 0;
        var evals = new List<(StaticEvaluator Eval, int P, int S)>();
        foreach (var (b, p, s) in ProbeSizes)
        {
            if (ProbeInputs.Bind(g, b, p, s, mask) is not { } bound) return 0;
            evals.Add((new StaticEvaluator(g, shapes, bound), p, s));
        }
        var replaced = 0;
        string? positions = null;
        foreach (var node in candidates)
        {
            var counted = evals.All(e => e.Eval.Value(node.Outputs[0]) is { } v && v.IsInteger && v.Shape.SequenceEqual(new long[] { 1, e.S })
                && v.Data.Select((x, i) => x == e.P + i).All(ok => ok));
            if (!counted) continue;
            if (positions is null)
            {
                var batch = g.FreshName("counted_positions.batch");
                g.Add(GraphEdits.Node("Shape", [ids], batch, Building.Attr.Int("start", 0), Building.Attr.Int("end", 1)));
                var length = g.FreshName("counted_positions.length");
                g.Add(GraphEdits.Node("Shape", [ids], length, Building.Attr.Int("start", 1), Building.Attr.Int("end", 2)));
                positions = PositionOffset.PerRowPositions(g, batch, length, "counted_positions");
            }
            // Gather takes int32 or int64 indices; the per-row positions are int64.
            g.ReplaceUses(node.Outputs[0], positions);
            replaced++;
        }
        return replaced;
    }
}
