using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// What a swapped model must offer a host, checked before it is written: token ids in, logits out besides the state,
/// and state whose size per sequence is known and bounded. The sizes come from the model's own records
/// (head counts, dims, value_info), which a broken or forged model can make negative or absurd.
/// </summary>
public static class SwapLimits
{
    /// <summary>State elements per sequence and layer: 2^30 (4 GiB of float32) is far beyond any real rule's state.</summary>
    public const long MaxStateElementsPerRow = 1L << 30;

    public static void Check(Graph graph, IReadOnlyList<StateTensor> states)
    {
        foreach (var s in states)
        {
            var perRow = 1L;
            for (var axis = 1; axis < s.Shape.Length; axis++)
            {
                if (axis == s.GrowingAxis) continue;
                if (s.Shape[axis].Value is not { } d)
                {
                    throw new GraphException($"state '{s.Past}' has an unknown dimension {axis} ('{s.Shape[axis].Symbol}'); its size must be known to carry it between calls");
                }
                // 0 is allowed: a summary rule without a recent-token ring keeps an empty window.
                if (d < 0 || d > MaxStateElementsPerRow || (d > 0 && perRow > MaxStateElementsPerRow / d))
                {
                    throw new GraphException($"state '{s.Past}' would have dimension {axis} = {d}: the model's recorded sizes give a state that is negative or over {MaxStateElementsPerRow} elements per sequence");
                }
                perRow *= d;
            }
        }
        var statePresent = states.Select(s => s.Present).ToHashSet(StringComparer.Ordinal);
        if (!graph.Outputs.Any(o => !statePresent.Contains(o.Name)))
        {
            throw new GraphException("the model has no output besides the attention state: there are no logits to read");
        }
        var statePast = states.Select(s => s.Past).Append(PositionOffset.InputName).ToHashSet(StringComparer.Ordinal);
        if (!graph.Inputs.Any(i => !statePast.Contains(i.Name)))
        {
            throw new GraphException("the model has no input besides the attention state: there is no input for the token ids");
        }
    }
}
