using OnnxAttention.Graphs.Ir;
using OnnxAttention.Operators.Registration;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// The nodes that compute some values (a layer's keys and values) from a few graph inputs (the ids, positions) and
/// constants, where each token's result depends on that token's inputs only: no attention, no softmax, no product
/// of two tensors that both read token values (which is how scores mix positions; a product with a tensor that reads
/// only the inputs' shapes, such as rotary frequencies expanded to the batch, is allowed), no cumulative sum, convolution or control
/// flow, and reductions only over the last axis (a norm). Such values can be recomputed for other tokens by
/// copying those nodes onto other inputs (<see cref="Clone"/>). The check is by operator and is meant for the
/// graphs exporters write for transformer decoders; it is not a proof about arbitrary graphs.
/// </summary>
internal static class TokenLocalSubgraph
{
    /// <summary>Why <paramref name="values"/> are not token-local functions of <paramref name="leaves"/> and constants; null when they are.</summary>
    /// <param name="tokenData">The leaves that hold one value per token (ids, position ids); only nodes that read
    /// them are checked: what reads nothing but a position counter or shapes is the same for every token.</param>
    public static string? Refusal(Graph g, IEnumerable<string> values, IReadOnlySet<string> leaves, IReadOnlySet<string> tokenData)
    {
        var seen = new HashSet<string>();
        var pending = new Stack<string>(values);
        var dependent = new Dictionary<string, bool>();
        while (pending.Count > 0)
        {
            var value = pending.Pop();
            if (!seen.Add(value) || leaves.Contains(value) || g.Constant(value) is not null) continue;
            if (g.IsGraphInput(value)) return $"they read graph input '{value}'";
            var node = g.Producer(value);
            if (node is null) return $"'{value}' has no producer";
            if (node.Reads.Any(r => Depends(g, r, tokenData, dependent, valuesOnly: true)) && NodeRefusal(g, node, tokenData, dependent) is { } why)
            {
                return $"they go through {node}, {why}";
            }
            foreach (var input in node.Reads) pending.Push(input);
        }
        return null;
    }

    /// <summary>
    /// Copies the nodes between <paramref name="substitutes"/>' keys and <paramref name="values"/>, reading each
    /// substitute instead of its key; nodes that read none of the keys are shared, not copied. Returns the copies of
    /// <paramref name="values"/> in order.
    /// </summary>
    public static IReadOnlyList<string> Clone(Graph g, IReadOnlyList<string> values, IReadOnlyDictionary<string, string> substitutes, string hint)
    {
        var leaves = substitutes.Keys.ToHashSet();
        var dependent = new Dictionary<string, bool>();
        var copies = new Dictionary<string, string>(substitutes);
        string Copy(string value)
        {
            if (copies.TryGetValue(value, out var copy)) return copy;
            if (!Depends(g, value, leaves, dependent)) return value;
            var node = g.Producer(value) ?? throw new GraphException($"'{value}' has no producer");
            var proto = node.Proto.Clone();
            proto.Name = g.FreshName($"{hint}.{node.Name}");
            for (var i = 0; i < proto.Input.Count; i++)
            {
                if (proto.Input[i].Length > 0) proto.Input[i] = Copy(proto.Input[i]);
            }
            for (var i = 0; i < proto.Output.Count; i++)
            {
                if (proto.Output[i].Length == 0) continue;
                var fresh = g.FreshName($"{hint}.{proto.Output[i]}");
                copies[proto.Output[i]] = fresh;
                proto.Output[i] = fresh;
            }
            g.Add(proto);
            return copies[value];
        }
        return [.. values.Select(Copy)];
    }

    /// <summary>
    /// Whether <paramref name="value"/> reads a leaf; with <paramref name="valuesOnly"/>, a leaf's values rather
    /// than only its shape (Shape and Size read no values: the same for every token), and <paramref name="memo"/>
    /// must be used with one setting only.
    /// </summary>
    private static bool Depends(Graph g, string value, IReadOnlySet<string> leaves, Dictionary<string, bool> memo, bool valuesOnly = false)
    {
        if (memo.TryGetValue(value, out var known)) return known;
        bool result;
        if (leaves.Contains(value)) result = true;
        else if (g.Constant(value) is not null) result = false;
        else if (g.Producer(value) is { } node)
        {
            memo[value] = false; // a cycle is reported elsewhere; do not recurse forever
            result = !(valuesOnly && (node.Is("Shape") || node.Is("Size"))) && node.Reads.Any(r => Depends(g, r, leaves, memo, valuesOnly));
        }
        else result = false;
        memo[value] = result;
        return result;
    }

    private static readonly HashSet<string> Mixing = ["Softmax", "LogSoftmax", "CumSum", "Conv", "ConvTranspose", "ConvInteger", "If", "Loop", "Scan",
        "LSTM", "GRU", "RNN", "TopK", "NonZero", "Unique"];

    private static readonly HashSet<string> Products = ["MatMul", "Gemm", "Einsum", "MatMulInteger", "QLinearMatMul", "FusedMatMul"];

    private static string? NodeRefusal(Graph g, GraphNode node, IReadOnlySet<string> leaves, Dictionary<string, bool> dependent)
    {
        if (node.Domain == OperatorRegistry.Domain || node.OpType.Contains("Attention", StringComparison.Ordinal))
        {
            return "an attention (it reads other tokens)";
        }
        if (Mixing.Contains(node.OpType) || node.Proto.Attribute.Any(a => a.G is not null || a.Graphs.Count > 0))
        {
            return "which may combine tokens";
        }
        if (Products.Contains(node.OpType) && node.Inputs.Count(i => i.Length > 0 && Depends(g, i, leaves, dependent, valuesOnly: true)) >= 2)
        {
            return "a product of two token-dependent tensors (as attention scores are)";
        }
        if (node.OpType.StartsWith("Reduce", StringComparison.Ordinal) && !LastAxisOnly(g, node))
        {
            return "a reduction over axes other than the last";
        }
        return null;
    }

    private static bool LastAxisOnly(Graph g, GraphNode node)
    {
        var axes = node.IntsAttribute("axes")?.ToArray();
        if (axes is null && node.Input(1).Length > 0)
        {
            axes = ConstantReader.TryInts(g.Constant(node.Input(1)));
        }
        return axes is [-1];
    }
}
