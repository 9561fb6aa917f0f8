using System.Globalization;
using System.Text;
using System.Text.Json;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.Registration;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// The input/output contract of a model swapped by <see cref="AttentionSwapper"/>: the ids input, the logits output,
/// the state tensors (names, element type, shape, growing or fixed, updatable in place or not), and whether the rows
/// of a batch may be at different positions. The swap writes it into the model's metadata with <see cref="Write"/>;
/// hosts read it back with <see cref="Read"/>, which refuses anything malformed with a
/// <see cref="ModelContractException"/> naming the key, rather than trusting a file.
/// </summary>
public sealed record ModelContract(string Rule, int Layers, IReadOnlyList<StateEntry> State, bool PositionsPerRow,
    string IdsInput, string LogitsOutput, bool HasPositionInput)
{
    public const string RuleKey = "onnx_attention.rule";
    public const string LayersKey = "onnx_attention.layers";

    /// <summary>
    /// A JSON array with one object per state tensor: "past", "present", "shape" (numbers, or symbols for the batch and a
    /// growing axis), "type", "grows" (the axis that grows by the tokens of each call; absent for fixed-size state) and
    /// "in_place" (absent in models swapped before it was recorded: two buffers then).
    /// </summary>
    public const string StateKey = "onnx_attention.state";

    /// <summary>"per_row" when the rows of a batch may be at different positions (see <see cref="PositionOffset"/>), else "shared".</summary>
    public const string PositionsKey = "onnx_attention.positions";

    /// <summary>
    /// The graph input a host feeds the attention mask through ([batch, past + seq], 1 = token, 0 = pad), when the
    /// swapped model reads it; absent when it takes no padding.
    /// </summary>
    public const string PaddingKey = "onnx_attention.padding";

    /// <summary>
    /// "right" when the exporter's runtime pads a row after its tokens (onnxruntime-genai), "left" (or absent) when
    /// before them (Hugging Face generate); written with <see cref="PaddingKey"/>.
    /// </summary>
    public const string PaddingSideKey = "onnx_attention.padding_side";

    /// <summary>The model's own position ids input, which a swap keeps where rows may be padded.</summary>
    public const string PositionIdsInputName = "position_ids";

    /// <summary>The attention mask input (see <see cref="PaddingKey"/>); null when the model takes no padding.</summary>
    public string? PaddingInput { get; init; }

    /// <summary>Whether a host pads a row after its tokens rather than before (see <see cref="PaddingSideKey"/>).</summary>
    public bool PadsOnTheRight { get; init; }

    /// <summary>A position_ids input [batch, seq] the host feeds; null when the model computes positions itself.</summary>
    public string? PositionIdsInput { get; init; }

    /// <summary>Most dims of one state tensor, and most elements of one batch row of it.</summary>
    public const int MaxRank = 8;
    public const long MaxElementsPerRow = int.MaxValue;

    /// <summary>Whether the model carries a swap's contract at all (it may still be malformed).</summary>
    public static bool IsPresent(ModelProto model) => model.MetadataProps.Any(p => p.Key is RuleKey or StateKey);

    /// <summary>
    /// Records the contract of a model the swap has just finished (<paramref name="report"/>: what it did). A state is marked in place when its replacement says
    /// the operator takes it in place and the graph agrees: one of our operators is the only node reading the past and
    /// the only one writing the present (ORT's own operators promise nothing about aliased inputs and outputs).
    /// </summary>
    public static void Write(ModelProto model, SwapReport report)
    {
        var states = report.State;
        var nodes = model.Graph.Node;
        var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartArray();
            foreach (var s in states)
            {
                w.WriteStartObject();
                w.WriteString("past", s.Past);
                w.WriteString("present", s.Present);
                w.WriteStartArray("shape");
                foreach (var d in s.Shape) w.WriteStringValue(d.Value?.ToString(CultureInfo.InvariantCulture) ?? d.Symbol ?? "");
                w.WriteEndArray();
                w.WriteString("type", s.ElementType.ToString().ToLowerInvariant());
                if (s.GrowingAxis is { } axis) w.WriteNumber("grows", axis);
                var inPlace = s.InPlace && s.GrowingAxis is null
                    && nodes.Where(n => n.Input.Contains(s.Past)).ToList() is [var reader]
                    && reader.Domain == OperatorRegistry.Domain && reader.Output.Contains(s.Present)
                    && nodes.Count(n => n.Output.Contains(s.Present)) == 1;
                w.WriteBoolean("in_place", inPlace);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        Add(model, RuleKey, report.Rule.Spelling);
        Add(model, LayersKey, report.Replaced.Count.ToString(CultureInfo.InvariantCulture));
        Add(model, StateKey, Encoding.UTF8.GetString(json.ToArray()));
        Add(model, PositionsKey, report.PositionsPerRow ? "per_row" : "shared");
        if (report.PaddingInput is { } padding)
        {
            Add(model, PaddingKey, padding);
            Add(model, PaddingSideKey, report.PadsOnTheRight ? "right" : "left");
        }
    }

    /// <summary>Reads and checks the contract of a swapped model.</summary>
    /// <exception cref="ModelContractException">The metadata is missing, duplicated or malformed, or names inputs and outputs the graph lacks.</exception>
    public static ModelContract Read(ModelProto swapped)
    {
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in swapped.MetadataProps.Where(p => p.Key.StartsWith("onnx_attention.", StringComparison.Ordinal)))
        {
            if (!meta.TryAdd(p.Key, p.Value)) throw new ModelContractException($"metadata '{p.Key}' appears more than once");
        }
        if (!meta.TryGetValue(StateKey, out var json))
        {
            throw new ModelContractException($"the model carries no OnnxAttention swap metadata ('{StateKey}'); swap it first");
        }
        var inputs = swapped.Graph?.Input.Select(i => i.Name).ToHashSet(StringComparer.Ordinal) ?? [];
        var outputs = swapped.Graph?.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal) ?? [];
        var state = ReadState(json, inputs, outputs);
        var rule = meta.TryGetValue(RuleKey, out var r) && r.Length > 0 ? r
            : throw new ModelContractException($"metadata '{RuleKey}' is missing or empty");
        var layers = !meta.TryGetValue(LayersKey, out var l) ? 0
            : int.TryParse(l, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
            : throw new ModelContractException($"metadata '{LayersKey}' is '{Clip(l)}'; expected a non-negative integer");
        var perRow = !meta.TryGetValue(PositionsKey, out var positions) ? false
            : positions switch
            {
                "per_row" => true,
                "shared" => false,
                _ => throw new ModelContractException($"metadata '{PositionsKey}' is '{Clip(positions)}'; expected per_row or shared"),
            };

        var pastNames = state.Select(s => s.Past).Append(PositionOffset.InputName).ToHashSet(StringComparer.Ordinal);
        var ids = swapped.Graph!.Input.FirstOrDefault(i => !pastNames.Contains(i.Name))?.Name
            ?? throw new ModelContractException("the swapped model has no input besides its state and position: no ids input");
        var logits = swapped.Graph.Output.FirstOrDefault(o => state.All(s => s.Present != o.Name))?.Name
            ?? throw new ModelContractException("the swapped model has no output besides its state: no logits output");
        var padding = !meta.TryGetValue(PaddingKey, out var mask) ? null
            : inputs.Contains(mask) && !pastNames.Contains(mask) && mask != ids ? mask
            : throw new ModelContractException($"metadata '{PaddingKey}' names '{Clip(mask)}', which is not an input of the graph besides the ids and state");
        var right = !meta.TryGetValue(PaddingSideKey, out var side) ? false
            : side switch
            {
                "right" => true,
                "left" => false,
                _ => throw new ModelContractException($"metadata '{PaddingSideKey}' is '{Clip(side)}'; expected left or right"),
            };
        return new ModelContract(rule, layers, state, perRow, ids, logits, inputs.Contains(PositionOffset.InputName))
        {
            PaddingInput = padding,
            PadsOnTheRight = right,
            PositionIdsInput = inputs.Contains(PositionIdsInputName) && ids != PositionIdsInputName ? PositionIdsInputName : null,
        };
    }

    private static List<StateEntry> ReadState(string json, HashSet<string> inputs, HashSet<string> outputs)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw new ModelContractException($"metadata '{StateKey}' is not JSON ({e.Message.Split('.')[0]}): '{Clip(json)}'");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Array)
            {
                throw new ModelContractException($"metadata '{StateKey}' must be a JSON array of state tensors, got {doc.RootElement.ValueKind.ToString().ToLowerInvariant()} '{Clip(json)}'");
            }
            var state = new List<StateEntry>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                var where = $"metadata '{StateKey}' entry {state.Count}";
                if (e.ValueKind != JsonValueKind.Object) throw new ModelContractException($"{where} must be an object, got {e.ValueKind.ToString().ToLowerInvariant()}");
                var past = Name(e, "past", where, inputs, "input");
                var present = Name(e, "present", where, outputs, "output");
                if (!names.Add(past) || !names.Add(present)) throw new ModelContractException($"{where} names '{past}' or '{present}' a second time");
                var type = ElementType(e, where);
                int? grows = e.TryGetProperty("grows", out var g) && g.ValueKind != JsonValueKind.Null
                    ? g.ValueKind == JsonValueKind.Number && g.TryGetInt32(out var axis) ? axis
                        : throw new ModelContractException($"{where} ('{past}'): \"grows\" must be an axis number")
                    : null;
                var tail = Shape(e, where, past, grows);
                var inPlace = e.TryGetProperty("in_place", out var ip)
                    && (ip.ValueKind is JsonValueKind.True or JsonValueKind.False ? ip.GetBoolean()
                        : throw new ModelContractException($"{where} ('{past}'): \"in_place\" must be true or false"));
                state.Add(new StateEntry(past, present, type, tail, grows, inPlace && grows is null));
            }
            return state;
        }
    }

    private static string Name(JsonElement e, string key, string where, HashSet<string> declared, string what)
    {
        var name = e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
        if (name.Length == 0) throw new ModelContractException($"{where} has no \"{key}\" name");
        return declared.Contains(name) ? name
            : throw new ModelContractException($"{where} names {key} '{Clip(name)}', which is not an {what} of the graph");
    }

    private static TensorProto.Types.DataType ElementType(JsonElement e, string where)
    {
        var text = e.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "";
        return text is "float" or "float16" or "bfloat16" or "int8" && Enum.TryParse<TensorProto.Types.DataType>(text, ignoreCase: true, out var type) ? type
            : throw new ModelContractException($"{where} has type '{Clip(text)}'; expected float, float16, bfloat16 or int8");
    }

    /// <summary>The dims after the batch; a growing axis is 0 (the start of a sequence), every other dim a bounded number.</summary>
    private static long[] Shape(JsonElement e, string where, string past, int? grows)
    {
        if (!e.TryGetProperty("shape", out var shape) || shape.ValueKind != JsonValueKind.Array)
        {
            throw new ModelContractException($"{where} ('{past}') has no \"shape\" array");
        }
        var rank = shape.GetArrayLength();
        if (rank < 1 || rank > MaxRank) throw new ModelContractException($"{where} ('{past}') has rank {rank}; expected 1 to {MaxRank} dims");
        if (grows is { } g && (g < 1 || g >= rank)) throw new ModelContractException($"{where} ('{past}'): growing axis {g} is not a dim after the batch");
        var tail = new long[rank - 1];
        long elements = 1;
        var i = 0;
        foreach (var d in shape.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.String) throw new ModelContractException($"{where} ('{past}'): shape dims must be strings");
            if (i > 0 && i != grows)
            {
                var text = d.GetString()!;
                if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v > MaxElementsPerRow)
                {
                    throw new ModelContractException($"{where} ('{past}') has dim {i} = '{Clip(text)}'; expected a number in [0, {MaxElementsPerRow}]");
                }
                tail[i - 1] = v;
                elements *= v; // both factors are at most 2^31 - 1, so no overflow before the check below
                if (elements > MaxElementsPerRow)
                {
                    throw new ModelContractException($"{where} ('{past}') holds more than {MaxElementsPerRow} elements per batch row");
                }
            }
            i++;
        }
        return tail;
    }

    private static void Add(ModelProto model, string key, string value) =>
        model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });

    private static string Clip(string s) => s.Length <= 60 ? s : s[..60] + "...";
}
