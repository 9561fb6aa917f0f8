using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Turns a model's own KV cache (past inputs joined with the new keys and values, presents as outputs; see
/// <see cref="KvCache"/>) into the interface of a swapped model: the past inputs and present outputs go (the
/// replacement's state takes their place), and what the model derived from the cache's length is fed from
/// <see cref="PositionOffset.InputName"/> instead:
/// <list type="bullet">
/// <item>Shape(past) becomes [batch, kv_heads, past_sequence_length, d] (in the past's layout), batch read from the ids;</item>
/// <item>a position_ids input becomes past_sequence_length + 0 .. S - 1 on every row;</item>
/// <item>an attention_mask input read only for its shape becomes a shape [batch, past_sequence_length + S].</item>
/// </list>
/// An attention_mask whose values are read (padding) cannot be fed and is refused by the rules (see
/// <see cref="AttentionRequirements.CacheWithoutDataMask"/>), and one whose values are read elsewhere is an error.
/// </summary>
internal static class CacheAbsorption
{
    public const string PositionIds = "position_ids", AttentionMask = "attention_mask";

    /// <summary>Rewires the graph before the replacements are built; returns what changed in the model's interface.</summary>
    /// <param name="keepsMask">Whether a replacement reads the attention mask (padding), so positions must be fed too.</param>
    public static List<string> Apply(Graph g, IReadOnlyList<AttentionMatch> matches, ValueShapes? shapes = null, bool keepsMask = false)
    {
        var caches = matches.Where(m => m.Cache is not null).ToList();
        if (caches.Count == 0) return [];
        var pasts = caches.SelectMany(m => new[] { m.Cache!.PastKey, m.Cache.PastValue }).ToHashSet();
        var ids = g.Inputs.FirstOrDefault(i => !pasts.Contains(i.Name) && i.Name is not PositionIds and not AttentionMask && !g.Initializers.ContainsKey(i.Name))?.Name
            ?? throw new GraphException("the model has no input besides its KV cache to read the batch size and sequence length from");
        PositionOffset.EnsureInput(g);
        var changes = new List<string>();
        var b = new Builder(g, ids);

        // Shapes read anywhere downstream of the cache (a key length taken after repeat_kv, say) are worked out
        // by running the shape computations at two sizes, then written from the ids and the past length.
        var mask = matches.Select(m => m.KeyPadding ?? m.KeyLengthsReads).FirstOrDefault(x => x is not null) ?? (g.IsGraphInput(AttentionMask) ? AttentionMask : null);
        // Before the rewiring below, while the probes can still bind the cache.
        if (shapes is not null && CountedPositions.Apply(g, ids, shapes, mask) is > 0 and var counted)
        {
            changes.Add($"{counted} position lookup(s) counted from the cache length now read '{PositionOffset.InputName}' per row");
        }
        if (shapes is not null) RewireDerivedShapes(g, pasts, shapes, b, mask);

        foreach (var m in caches)
        {
            var c = m.Cache!;
            foreach (var (past, dim) in new[] { (c.PastKey, m.HeadDim), (c.PastValue, m.ValueHeadDim) })
            {
                Dim[] pastShape = c.PastLayout == KeyLayout.Bshd ? [b.Batch, b.Past, m.KvHeads, dim] : [b.Batch, m.KvHeads, b.Past, dim];
                foreach (var shape in g.Consumers(past).Where(n => n.Is("Shape")).ToList())
                {
                    g.ReplaceUses(shape.Outputs[0], b.Shape(shape, pastShape, $"{past}.shape"));
                }
            }
            // The joined cache's length (a mask sliced to the key length, say) is past + the new tokens.
            foreach (var (present, dim) in new[] { (c.PresentKey, m.HeadDim), (c.PresentValue, m.ValueHeadDim) })
            {
                Dim[] joinedShape = c.PastLayout == KeyLayout.Bshd ? [b.Batch, b.Total, m.KvHeads, dim] : [b.Batch, m.KvHeads, b.Total, dim];
                foreach (var shape in g.Consumers(present).Where(n => n.Is("Shape")).ToList())
                {
                    g.ReplaceUses(shape.Outputs[0], b.Shape(shape, joinedShape, $"{present}.shape"));
                }
            }
            Remove(g.Inputs, c.PastKey, c.PastValue);
            Remove(g.Outputs, c.PresentKey, c.PresentValue);
        }
        changes.Add($"KV cache inputs {string.Join(", ", caches.SelectMany(m => new[] { m.Cache!.PastKey, m.Cache.PastValue }))} and outputs " +
            $"{string.Join(", ", caches.SelectMany(m => new[] { m.Cache!.PresentKey, m.Cache.PresentValue }))} removed: the replacement's state carries the sequence; " +
            $"their length comes from '{PositionOffset.InputName}'");

        // A model whose attention honours padding keeps its attention_mask, and with it its position_ids: a padded
        // row's positions (cumsum(mask) - 1 for left padding) are not past + 0 .. S - 1.
        if (keepsMask && g.Inputs.Any(i => i.Name == PositionIds) && g.Consumers(PositionIds).Count > 0)
        {
            changes.Add($"input '{PositionIds}' kept: rows may be padded (attention_mask), so positions are fed");
        }
        else if (g.Inputs.FirstOrDefault(i => i.Name == PositionIds) is { } positionIds && g.Consumers(PositionIds).Count > 0)
        {
            var type = (TensorProto.Types.DataType)positionIds.Type.TensorType.ElemType;
            g.ReplaceUses(PositionIds, b.Positions(type));
            Remove(g.Inputs, PositionIds);
            changes.Add($"input '{PositionIds}' removed: positions are {PositionOffset.InputName} + 0 .. S - 1, per row (no padding)");
        }
        if (g.Inputs.Any(i => i.Name == AttentionMask) && g.Consumers(AttentionMask) is { Count: > 0 } readers && readers.All(r => r.Is("Shape")))
        {
            foreach (var shape in readers.ToList())
            {
                g.ReplaceUses(shape.Outputs[0], b.Shape(shape, [b.Batch, b.Total], "attention_mask.shape"));
            }
            Remove(g.Inputs, AttentionMask);
            changes.Add($"input '{AttentionMask}' removed: only its shape was read, now [batch, {PositionOffset.InputName} + S]");
        }
        return changes;
    }

    /// <summary>
    /// After the swap of a model whose cache became state: an attention_mask whose values the model still reads
    /// (for positions, say) would have to be fed by a host that knows nothing of it.
    /// </summary>
    public static void CheckFed(Graph g, IReadOnlyList<AttentionMatch> matches)
    {
        if (matches.Any(m => m.KeyPadding is not null)) return; // the mask is kept as an input and fed
        if (g.Inputs.Any(i => i.Name == AttentionMask) && g.Consumers(AttentionMask).FirstOrDefault(r => !r.Is("Shape")) is { } reader)
        {
            throw new GraphException($"the model still reads the values of graph input '{AttentionMask}' (in {reader}) after its KV cache became state; " +
                $"a swapped model is fed ids, '{PositionOffset.InputName}' and the state, so padding cannot be carried");
        }
    }

    private static readonly (int B, int P, int S)[] ProbeSizes = [(2, 3, 4), (3, 5, 1)];

    private static void RewireDerivedShapes(Graph g, HashSet<string> pasts, ValueShapes shapes, Builder b, string? mask)
    {
        var derived = new HashSet<string>(pasts);
        var shapeNodes = new List<GraphNode>();
        foreach (var node in g.TopologicalOrder())
        {
            if (!node.Inputs.Any(derived.Contains)) continue;
            if (node.Is("Shape")) shapeNodes.Add(node);
            else foreach (var o in node.Outputs) derived.Add(o);
        }
        if (shapeNodes.Count == 0) return;
        var evals = new List<(StaticEvaluator Eval, int B, int P, int S)>();
        foreach (var (batch, past, seq) in ProbeSizes)
        {
            if (Attention.Matchers.ProbeInputs.Bind(g, batch, past, seq, mask) is not { } bound) return;
            evals.Add((new StaticEvaluator(g, shapes, bound), batch, past, seq));
        }
        foreach (var node in shapeNodes)
        {
            var values = evals.Select(e => e.Eval.Value(node.Outputs[0])).ToList();
            if (values.Any(v => v is null || v.Rank != 1) || values.Select(v => v!.Data.Length).Distinct().Count() != 1) continue;
            var parts = new List<Dim>();
            for (var a = 0; a < values[0]!.Data.Length; a++)
            {
                var at = values.Select(v => (long)v!.Data[a]).ToList();
                bool All(Func<(StaticEvaluator Eval, int B, int P, int S), long> size) => evals.Select((e, i) => at[i] == size(e)).All(x => x);
                Dim? dim = at.Distinct().Count() == 1 ? new Dim(at[0], null)
                    : All(e => e.B) ? b.Batch
                    : All(e => e.P) ? b.Past
                    : All(e => e.P + e.S) ? b.Total
                    : All(e => e.S) ? b.Length
                    : (Dim?)null;
                if (dim is not { } known)
                {
                    parts.Clear();
                    break;
                }
                parts.Add(known);
            }
            if (parts.Count == 0) continue;
            g.ReplaceUses(node.Outputs[0], b.Vector([.. parts], $"{node.Name}.from_lengths"));
        }
    }

    private static void Remove(IList<ValueInfoProto> list, params string[] names)
    {
        foreach (var v in list.Where(v => names.Contains(v.Name)).ToList()) list.Remove(v);
    }

    /// <summary>Nodes for the int64 values the rewiring needs, each made once.</summary>
    private sealed class Builder(Graph g, string ids)
    {
        private string? _batch, _length, _past, _total;

        /// <summary>Symbolic parts of a shape: the batch, the past length, past + new.</summary>
        public Dim Batch => "batch";

        public Dim Past => "past";

        public Dim Total => "total";

        public Dim Length => "length";

        /// <summary>A vector of the given dimensions (numbers, batch, past, total, length).</summary>
        public string Vector(Dim[] dims, string hint)
        {
            var parts = dims.Select((d, a) => d.Value is { } fixedSize ? Ints(hint + $".dim{a}", fixedSize)
                : d.Symbol == "batch" ? BatchVector() : d.Symbol == "past" ? PastVector() : d.Symbol == "length" ? LengthVector() : TotalVector()).ToArray();
            if (parts.Length == 0) return Ints(hint + ".empty");
            return parts.Length == 1 ? parts[0] : Add("Concat", parts, hint, Attr.Int("axis", 0));
        }

        /// <summary>The value a Shape node (with its start and end) would give for a tensor of shape <paramref name="dims"/>.</summary>
        public string Shape(GraphNode shapeNode, Dim[] dims, string hint)
        {
            var rank = dims.Length;
            long Clamp(long axis) => Math.Clamp(axis < 0 ? axis + rank : axis, 0, rank);
            var start = Clamp(shapeNode.IntAttribute("start", 0));
            var end = Clamp(shapeNode.IntAttribute("end", rank));
            var parts = new List<string>();
            for (var a = start; a < end; a++)
            {
                var d = dims[a];
                parts.Add(d.Value is { } fixedSize ? Ints(hint + $".dim{a}", fixedSize)
                    : d.Symbol == "batch" ? BatchVector() : d.Symbol == "past" ? PastVector() : TotalVector());
            }
            if (parts.Count == 0) return Ints(hint + ".empty");
            if (parts.Count == 1) return parts[0];
            return Add("Concat", parts.ToArray(), hint, Attr.Int("axis", 0));
        }

        /// <summary>[B, S] of the given integer type: each row's past + 0 .. S - 1.</summary>
        public string Positions(TensorProto.Types.DataType type)
        {
            var positions = PositionOffset.PerRowPositions(g, BatchVector(), LengthVector(), PositionIds);
            return type == TensorProto.Types.DataType.Int64 ? positions : Add("Cast", [positions], "position_ids_cast", Attr.Int("to", (long)type));
        }

        private string BatchVector() => _batch ??= Add("Shape", [ids], "batch", Attr.Int("start", 0), Attr.Int("end", 1));

        private string LengthVector() => _length ??= Add("Shape", [ids], "sequence_length_1d", Attr.Int("start", 1), Attr.Int("end", 2));

        private string PastVector() => _past ??= Add("Reshape", [PositionOffset.Shared(g), Ints("shape_1", 1)], "past_length");

        private string TotalVector() => _total ??= Add("Add", [PastVector(), LengthVector()], "total_length");

        private string Ints(string hint, params long[] values)
        {
            var name = g.FreshName(hint);
            g.AddInitializer(Tensors.Int64(name, values, values.Length));
            return name;
        }

        private string Add(string op, string[] inputs, string hint, params AttributeProto[] attributes)
        {
            var output = g.FreshName(hint);
            var n = new NodeProto { OpType = op, Name = output };
            n.Input.AddRange(inputs);
            n.Output.Add(output);
            n.Attribute.AddRange(attributes);
            g.Add(n);
            return output;
        }
    }
}
