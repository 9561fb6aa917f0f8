using System.Text.Json;
using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.Registration;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Replaces every recognised attention of a model with the chosen rule, adds per-layer state inputs and outputs,
/// offsets shape-derived positions so the model can run in pieces, removes what became dead, and records the
/// swap in the model's metadata.
/// </summary>
public static class AttentionSwapper
{
    public const string MetadataRule = "onnx_attention.rule";
    public const string MetadataLayers = "onnx_attention.layers";
    public const string MetadataState = "onnx_attention.state";

    /// <summary>"per_row" when the rows of a batch may be at different positions (see <see cref="PositionOffset"/>), else "shared".</summary>
    public const string MetadataPositions = "onnx_attention.positions";

    /// <summary>
    /// The graph input a host feeds the attention mask through ([batch, past + seq], 1 = token, 0 = pad), when the
    /// swapped model reads it; absent when the swapped model takes no padding.
    /// </summary>
    public const string MetadataPadding = "onnx_attention.padding";

    /// <summary>
    /// One entry of <see cref="MetadataState"/>: names, shape (numbers, or symbols for the batch and a growing
    /// axis), element type, and the axis that grows by the tokens of each call (absent for fixed-size state).
    /// </summary>
    private sealed record StateMetadata(
        [property: System.Text.Json.Serialization.JsonPropertyName("past")] string Past,
        [property: System.Text.Json.Serialization.JsonPropertyName("present")] string Present,
        [property: System.Text.Json.Serialization.JsonPropertyName("shape")] string[] Shape,
        [property: System.Text.Json.Serialization.JsonPropertyName("type")] string Type,
        [property: System.Text.Json.Serialization.JsonPropertyName("grows"), System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] int? Grows);

    public static SwapReport Swap(ModelProto model, AttentionRule rule)
    {
        if (model.MetadataProps.Any(p => p.Key == MetadataRule))
        {
            throw new GraphException($"the model was already swapped ({model.MetadataProps.First(p => p.Key == MetadataRule).Value})");
        }
        var merged = MergedDecoder.Collapse(model);
        var graph = new Graph(model.Graph);
        var shapes = new ValueShapes(model.Graph);
        var findings = AttentionFinder.Find(graph, shapes);
        if (findings.Matches.Count == 0)
        {
            var why = findings.Misses.Count == 0
                ? "it has no Softmax-based attention and no attention operator"
                : string.Join("; ", findings.Misses.Select(m => $"{m.Anchor}: {m.Reason}"));
            throw new GraphException($"no attention to replace in the model: {why}");
        }

        var replacement = Create(rule);
        var accepted = new List<AttentionMatch>();
        var skipped = findings.Misses.ToList();
        foreach (var match in findings.Matches)
        {
            if (replacement.Refusal(match) is { } refusal) skipped.Add(new AttentionMiss(match.Pattern, match.Anchor, refusal));
            else accepted.Add(match);
        }
        if (accepted.Count == 0)
        {
            throw new GraphException($"no attention to replace in the model: {string.Join("; ", skipped.Select(m => $"{m.Anchor}: {m.Reason}"))}");
        }

        // A model that carries a KV cache between calls is swapped whole: a layer left with its own cache beside
        // layers whose cache became state could not be run by a host of swapped models.
        if (accepted.Any(m => m.Cache is not null) && skipped.Count > 0)
        {
            throw new GraphException("the model keeps a KV cache, so every attention must be replaced or none, but some cannot be: " +
                string.Join("; ", skipped.Select(m => $"{m.Anchor}: {m.Reason}")));
        }

        var readBefore = graph.Inputs.Where(i => graph.Consumers(i.Name).Count > 0).Select(i => i.Name).ToHashSet();
        var batch = BatchDim(model.Graph);
        var interfaceChanges = CacheAbsorption.Apply(graph, accepted, shapes);
        if (merged is not null) interfaceChanges.Insert(0, merged);
        var states = new List<StateTensor>();
        for (var layer = 0; layer < accepted.Count; layer++)
        {
            var match = MatchPrelude.Apply(graph, accepted[layer], layer);
            foreach (var s in replacement.Replace(graph, match, layer, batch))
            {
                states.Add(s);
                graph.Inputs.Add(ValueInfo(s.Past, s, present: false));
                graph.Outputs.Add(ValueInfo(s.Present, s, present: true));
            }
        }
        var removed = graph.RemoveDeadCode();
        var offsets = PositionOffset.Apply(graph, accepted.Select(m => m.KeyPadding).OfType<string>().ToHashSet());
        // The offset Ranges no longer read their constant start.
        removed += graph.RemoveDeadCode();
        // Inputs only the replaced attention read (a GroupQueryAttention's seqlens_k, say) are not fed any more.
        foreach (var unread in graph.Inputs.Where(i => readBefore.Contains(i.Name) && graph.Consumers(i.Name).Count == 0).ToList())
        {
            graph.Inputs.Remove(unread);
            interfaceChanges.Add($"input '{unread.Name}' removed: only the replaced attention read it");
        }
        if (accepted.Any(m => m.Cache is not null))
        {
            CacheAbsorption.CheckFed(graph, accepted);
        }
        // A growing KV cache has one length for the whole batch, so its rows cannot be at different positions either.
        var perRow = !PositionOffset.SharedIsRead(graph) && states.All(s => s.GrowingAxis is null);
        model.Graph = graph.ToProto();
        // Shape's start and end (which the rewiring of positions and caches writes) are opset 15.
        var shapeSlices = model.Graph.Node.Any(n => n.OpType == "Shape" && n.Attribute.Any(a => a.Name is "start" or "end")) ? 15 : 0;
        var opsetChange = OpsetUpgrade.Apply(model, Math.Max(shapeSlices, accepted.Max(replacement.RequiredOpset)));

        if (!model.OpsetImport.Any(o => o.Domain == OperatorRegistry.Domain))
        {
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = OperatorRegistry.Domain, Version = 1 });
        }
        model.MetadataProps.Add(new StringStringEntryProto { Key = MetadataRule, Value = rule.Spelling });
        model.MetadataProps.Add(new StringStringEntryProto { Key = MetadataLayers, Value = accepted.Count.ToString() });
        model.MetadataProps.Add(new StringStringEntryProto
        {
            Key = MetadataState,
            Value = JsonSerializer.Serialize(states.Select(s => new StateMetadata(s.Past, s.Present,
                s.Shape.Select(d => d.Value?.ToString() ?? d.Symbol ?? "").ToArray(), s.ElementType.ToString().ToLowerInvariant(), s.GrowingAxis))),
        });
        model.MetadataProps.Add(new StringStringEntryProto { Key = MetadataPositions, Value = perRow ? "per_row" : "shared" });
        if (accepted.Select(m => m.KeyPadding).FirstOrDefault(p => p is not null) is { } padding && model.Graph.Input.Any(i => i.Name == padding))
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = MetadataPadding, Value = padding });
        }
        var counts = accepted.GroupBy(m => m.Pattern).ToDictionary(g => $"{g.Key} -> {rule.Spelling}", g => g.Count());
        if (offsets > 0) counts["position Range offset"] = offsets;
        var hasPosition = model.Graph.Input.Any(i => i.Name == PositionOffset.InputName);
        return new SwapReport(rule, accepted, skipped, states, counts, removed, hasPosition) { OpsetChange = opsetChange, InterfaceChanges = interfaceChanges, PositionsPerRow = perRow };
    }

    /// <summary>Why <paramref name="rule"/> would leave <paramref name="match"/> as it is; null when it would replace it.</summary>
    public static string? Refusal(AttentionRule rule, AttentionMatch match) => Create(rule).Refusal(match);

    private static IAttentionReplacement Create(AttentionRule rule) => rule switch
    {
        LinearRule linear => new LinearReplacement(linear),
        SoftmaxRule => new SoftmaxReplacement(),
        WindowRule window => new WindowReplacement(window),
        HybridRule hybrid => new HybridReplacement(hybrid),
        SegmentRule segment => new SegmentReplacement(segment),
        SummaryRule summary => new SummaryReplacement(summary),
        _ => throw new GraphException($"attention rule '{rule.Spelling}' is not available yet"),
    };

    /// <summary>The batch dimension of the first graph input (the ids), symbolic or fixed.</summary>
    private static Dim BatchDim(GraphProto g)
    {
        var d = g.Input.FirstOrDefault()?.Type?.TensorType?.Shape?.Dim.FirstOrDefault();
        return d is null ? "batch" : d.HasDimValue ? d.DimValue : (d.DimParam.Length > 0 ? d.DimParam : "batch");
    }

    private static ValueInfoProto ValueInfo(string name, StateTensor s, bool present)
    {
        var tensor = new TypeProto.Types.Tensor { ElemType = (int)s.ElementType, Shape = new TensorShapeProto() };
        tensor.Shape.Dim.AddRange(s.Declared(present).Select(d => d.ToProto()));
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensor } };
    }
}
