using System.Text.Json;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;

namespace OnnxAttention.Host.Swapped;

/// <summary>One state tensor of a swapped model: past input, present output, and its shape after the batch dim.</summary>
public sealed record StateEntry(string Past, string Present, long[] TailShape)
{
    public long ElementsPerRow => TailShape.Aggregate(1L, (a, d) => a * d);
}

/// <summary>The input/output contract of a model swapped by <see cref="AttentionSwapper"/>, read from its metadata.</summary>
public sealed record SwappedModelInfo(string IdsInput, string LogitsOutput, IReadOnlyList<StateEntry> State, bool HasPositionInput, string Rule)
{
    public static SwappedModelInfo From(ModelProto swapped)
    {
        var json = swapped.MetadataProps.FirstOrDefault(p => p.Key == AttentionSwapper.MetadataState)?.Value
            ?? throw new ArgumentException("the model carries no OnnxAttention swap metadata; swap it first");
        var rule = swapped.MetadataProps.First(p => p.Key == AttentionSwapper.MetadataRule).Value;
        var state = JsonSerializer.Deserialize<JsonElement[]>(json)!.Select(e => new StateEntry(
            e.GetProperty("past").GetString()!, e.GetProperty("present").GetString()!,
            e.GetProperty("shape").EnumerateArray().Skip(1).Select(d => long.Parse(d.GetString()!)).ToArray())).ToList();
        var pastNames = state.Select(s => s.Past).Append(PositionOffset.InputName).ToHashSet();
        var ids = swapped.Graph.Input.First(i => !pastNames.Contains(i.Name)).Name;
        var logits = swapped.Graph.Output.First(o => state.All(s => s.Present != o.Name)).Name;
        var hasPosition = swapped.Graph.Input.Any(i => i.Name == PositionOffset.InputName);
        return new SwappedModelInfo(ids, logits, state, hasPosition, rule);
    }
}
