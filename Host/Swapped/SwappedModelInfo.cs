using System.Text.Json;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;

namespace OnnxAttention.Host.Swapped;

/// <summary>
/// One state tensor of a swapped model: past input, present output, and its shape after the batch dim at the
/// start of a sequence. A growing state (a KV cache) has <see cref="GrowingAxis"/> (counted in the full shape,
/// batch included) at length 0 in <see cref="TailShape"/>; each call's present is that call's past plus its tokens.
/// </summary>
public sealed record StateEntry(string Past, string Present, long[] TailShape, int? GrowingAxis = null)
{
    /// <summary>The element type as the swap metadata spells it ("float", "float16", ...).</summary>
    public string ElementType { get; init; } = "float";

    public long ElementsPerRow => TailShape.Aggregate(1L, (a, d) => a * d);

    public bool Grows => GrowingAxis is not null;
}

/// <summary>The input/output contract of a model swapped by <see cref="AttentionSwapper"/>, read from its metadata.</summary>
public sealed record SwappedModelInfo(string IdsInput, string LogitsOutput, IReadOnlyList<StateEntry> State, bool HasPositionInput, string Rule)
{
    /// <summary>
    /// Rows of one batch may be at different positions (<see cref="PositionOffset.InputName"/> fed as [batch]); false
    /// for models swapped before this was recorded, and where the model reads one position for all rows.
    /// </summary>
    public bool PositionsPerRow { get; init; }

    /// <summary>The input that takes the attention mask [batch, past + seq] (1 = token, 0 = pad); null when the model takes no padding.</summary>
    public string? PaddingInput { get; init; }

    /// <summary>The model's own position_ids input [batch, seq], kept by the swap when rows may be padded; null when absent.</summary>
    public string? PositionIdsInput { get; init; }

    public static SwappedModelInfo From(ModelProto swapped)
    {
        var json = swapped.MetadataProps.FirstOrDefault(p => p.Key == AttentionSwapper.MetadataState)?.Value
            ?? throw new ArgumentException("the model carries no OnnxAttention swap metadata; swap it first");
        var rule = swapped.MetadataProps.First(p => p.Key == AttentionSwapper.MetadataRule).Value;
        var state = JsonSerializer.Deserialize<JsonElement[]>(json)!.Select(Entry).ToList();
        var pastNames = state.Select(s => s.Past).Append(PositionOffset.InputName).ToHashSet();
        var ids = swapped.Graph.Input.First(i => !pastNames.Contains(i.Name)).Name;
        var logits = swapped.Graph.Output.First(o => state.All(s => s.Present != o.Name)).Name;
        var hasPosition = swapped.Graph.Input.Any(i => i.Name == PositionOffset.InputName);
        var perRow = swapped.MetadataProps.FirstOrDefault(p => p.Key == AttentionSwapper.MetadataPositions)?.Value == "per_row";
        var padding = swapped.MetadataProps.FirstOrDefault(p => p.Key == AttentionSwapper.MetadataPadding)?.Value;
        var positionIds = swapped.Graph.Input.Any(i => i.Name == "position_ids") ? "position_ids" : null;
        return new SwappedModelInfo(ids, logits, state, hasPosition, rule) { PositionsPerRow = perRow, PaddingInput = padding, PositionIdsInput = positionIds };
    }

    private static StateEntry Entry(JsonElement e)
    {
        int? grows = e.TryGetProperty("grows", out var g) && g.ValueKind == JsonValueKind.Number ? g.GetInt32() : null;
        var tail = e.GetProperty("shape").EnumerateArray().Skip(1).Select((d, i) => i + 1 == grows ? 0 : long.Parse(d.GetString()!)).ToArray();
        var type = e.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "float";
        return new StateEntry(e.GetProperty("past").GetString()!, e.GetProperty("present").GetString()!, tail, grows) { ElementType = type };
    }
}
