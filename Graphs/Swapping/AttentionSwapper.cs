using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.Registration;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Replaces every recognised attention of a model with the chosen rule, adds per-layer state inputs and outputs,
/// offsets shape-derived positions so the model can run in pieces, removes what became dead, and records the
/// swapped model's <see cref="ModelContract"/> in its metadata.
/// </summary>
public static class AttentionSwapper
{
    public static SwapReport Swap(ModelProto model, AttentionRule rule)
    {
        if (model.MetadataProps.Any(p => p.Key == ModelContract.RuleKey))
        {
            throw new GraphException($"the model was already swapped ({model.MetadataProps.First(p => p.Key == ModelContract.RuleKey).Value})");
        }
        InputMetadata.RefuseOurKeys(model);
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

        // A per-layer rule picks by the order the finder lists the attention (what inspect prints).
        var layerRules = rule is LayeredRule layered ? layered.ForLayers(findings.Matches.Count) : findings.Matches.Select(_ => rule).ToList();
        var accepted = new List<AttentionMatch>();
        var acceptedRules = new List<AttentionRule>();
        var skipped = findings.Misses.ToList();
        for (var i = 0; i < findings.Matches.Count; i++)
        {
            var match = findings.Matches[i];
            if (layerRules[i].CreateReplacement().Refusal(match) is { } refusal) skipped.Add(new AttentionMiss(match.Pattern, match.Anchor, refusal));
            else
            {
                accepted.Add(match);
                acceptedRules.Add(layerRules[i]);
            }
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
        // Every rule reads the attention mask when the model's attention honours padding (softmax as the model's own
        // mask, the fixed-size memories as their token_mask).
        var keepsMask = accepted.Any(m => m.KeyPadding is not null);
        var interfaceChanges = CacheAbsorption.Apply(graph, accepted, shapes, keepsMask);
        if (merged is not null) interfaceChanges.Insert(0, merged);
        var states = new List<StateTensor>();
        var layers = new List<LayerSwap>();
        var replacements = new List<IAttentionReplacement>();
        for (var layer = 0; layer < accepted.Count; layer++)
        {
            var match = MatchPrelude.Apply(graph, accepted[layer], layer);
            var replacement = acceptedRules[layer].CreateReplacement();
            replacements.Add(replacement);
            var layerStates = replacement.Replace(graph, match, layer, batch);
            foreach (var s in layerStates)
            {
                states.Add(s);
                graph.Inputs.Add(ValueInfo(s.Past, s, present: false));
                graph.Outputs.Add(ValueInfo(s.Present, s, present: true));
            }
            layers.Add(new LayerSwap(acceptedRules[layer], layerStates));
        }
        var removed = graph.RemoveDeadCode();
        var offsets = PositionOffset.Apply(graph, accepted.Select(m => m.KeyPadding).OfType<string>().ToHashSet());
        foreach (var replacement in replacements) replacement.Finish(graph);
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
        SwapLimits.Check(graph, states);
        var perRow = !PositionOffset.SharedIsRead(graph) && states.All(s => s.GrowingAxis is null);
        model.Graph = graph.ToProto();
        // Shape's start and end (which the rewiring of positions and caches writes) are opset 15.
        var shapeSlices = model.Graph.Node.Any(n => n.OpType == "Shape" && n.Attribute.Any(a => a.Name is "start" or "end")) ? 15 : 0;
        var opsetChange = OpsetUpgrade.Apply(model, Math.Max(shapeSlices, accepted.Select((m, i) => acceptedRules[i].CreateReplacement().RequiredOpset(m)).Max()));

        if (!model.OpsetImport.Any(o => o.Domain == OperatorRegistry.Domain))
        {
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = OperatorRegistry.Domain, Version = 1 });
        }
        var counts = accepted.Select((m, i) => $"{m.Pattern} -> {acceptedRules[i].Spelling}").GroupBy(k => k).ToDictionary(g => g.Key, g => g.Count());
        if (offsets > 0) counts["position Range offset"] = offsets;
        var hasPosition = model.Graph.Input.Any(i => i.Name == PositionOffset.InputName);
        var report = new SwapReport(rule, accepted, skipped, states, counts, removed, hasPosition)
        {
            OpsetChange = opsetChange,
            InterfaceChanges = interfaceChanges,
            PositionsPerRow = perRow,
            Layers = layers,
            PaddingInput = accepted.Select(m => m.KeyPadding).FirstOrDefault(p => p is not null) is { } padding && model.Graph.Input.Any(i => i.Name == padding) ? padding : null,
            PadsOnTheRight = accepted.Any(m => m.PaddingFromRowLengths),
        };
        ModelContract.Write(model, report);
        return report;
    }

    /// <summary>Why <paramref name="rule"/> would leave <paramref name="match"/> as it is; null when it would replace it.</summary>
    public static string? Refusal(AttentionRule rule, AttentionMatch match) => rule.CreateReplacement().Refusal(match);

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
