using System.Text.Json.Nodes;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Gives a swapped model the interface onnxruntime-genai 0.20 feeds, so that genai's own components carry its state:
/// <list type="bullet">
/// <item>genai feeds input_ids, attention_mask [batch, past + new] and the state, nothing else, so the swap's
/// past_sequence_length input becomes each row's real tokens before the call, from the mask's values (genai pads
/// batched prompts of different lengths on the right and marks the pads 0), or Shape(attention_mask)[1] -
/// Shape(input_ids)[1] where the model reads only the mask's length;</item>
/// <item>a pair of [batch, heads, length, dim] tensors per layer (softmax's growing KV cache, window's ring cache)
/// takes genai's KV-cache names past_key_values.N.key/value → present.N.key/value; genai finds a fixed length in the
/// declared shape and keeps one buffer of that size bound as past and present;</item>
/// <item>a [batch, heads, dk, dv] state with a [batch, heads, dk] normaliser (the linear rules) takes genai's
/// recurrent-state names past_key_values.N.recurrent_state and past_key_values.N.conv_state (the rank genai requires of
/// each); genai discovers them from the session's inputs, zeroes them at the start and binds one buffer per tensor as
/// past and present.</item>
/// </list>
/// Other shapes of state (segment's four caches, summary slots, hybrid's rank-4 compressed value, keys=ids' token ids) are refused with the reason.
/// </summary>
public static class GenaiInterface
{
    public const string KeySuffix = "key", ValueSuffix = "value", RecurrentSuffix = "recurrent_state", ConvSuffix = "conv_state";

    /// <summary>Rewrites <paramref name="swapped"/> in place; returns one line per layer kind, for messages.</summary>
    public static string Apply(ModelProto swapped)
    {
        var g = swapped.Graph;
        var rule = swapped.MetadataProps.FirstOrDefault(p => p.Key == ModelContract.RuleKey)?.Value
            ?? throw new GraphException("the model carries no swap metadata: swap it first");
        var stateEntry = swapped.MetadataProps.First(p => p.Key == ModelContract.StateKey);
        var layers = int.Parse(swapped.MetadataProps.First(p => p.Key == ModelContract.LayersKey).Value, System.Globalization.CultureInfo.InvariantCulture);
        var states = JsonNode.Parse(stateEntry.Value)!.AsArray();
        if (states.Any(s => s?["past"]?.GetValue<string>().StartsWith(RecomputedWindowReplacement.PastIds + ".", StringComparison.Ordinal) == true))
        {
            throw new GraphException($"the '{rule}' rule keeps token ids ({RecomputedWindowRule.Option}) as a layer's state, which onnxruntime-genai 0.20 " +
                "cannot carry (it carries a KV pair or a recurrent pair per layer); use window:W there for a genai folder");
        }
        if (layers == 0 || states.Count % layers != 0)
        {
            throw new GraphException($"the '{rule}' swap records {states.Count} state tensors for {layers} layers");
        }
        if (states.Any(s => s!["type"]?.GetValue<string>() == "int8"))
        {
            throw new GraphException($"the '{rule}' swap keeps int8 caches with a float16 scale per vector (state=int8), which onnxruntime-genai 0.20 " +
                "cannot carry (it binds one KV pair per layer); swap with state=float16 or float32 for a genai folder");
        }
        var perLayer = states.Count / layers;
        var renames = new Dictionary<string, string>();
        var kinds = new SortedSet<string>();
        for (var layer = 0; layer < layers; layer++)
        {
            var mine = Enumerable.Range(layer * perLayer, perLayer).Select(i => states[i]!.AsObject()).ToList();
            var ranks = mine.Select(s => s["shape"]!.AsArray().Count).ToList();
            string[] suffixes;
            if (perLayer == 2 && ranks[0] == 4 && ranks[1] == 4 && SameShape(mine[0], mine[1]))
            {
                suffixes = [KeySuffix, ValueSuffix];
                kinds.Add(mine[0]["grows"] is null ? "fixed-length KV cache (genai keeps one shared buffer)" : "growing KV cache");
            }
            else if (perLayer == 2 && ranks[0] == 4 && ranks[1] == 3)
            {
                suffixes = [RecurrentSuffix, ConvSuffix];
                kinds.Add("recurrent state (genai's recurrent_state / conv_state pair)");
            }
            else
            {
                throw new GraphException($"the '{rule}' rule keeps {perLayer} state tensors per layer of ranks [{string.Join(", ", ranks)}]; " +
                    "onnxruntime-genai 0.20 carries, per layer, a KV pair [batch, heads, length, dim] or a recurrent pair " +
                    "([batch, heads, dk, dv] with [batch, heads, dk]), so it cannot run this rule");
            }
            for (var i = 0; i < perLayer; i++)
            {
                var past = $"past_key_values.{layer}.{suffixes[i]}";
                var present = $"present.{layer}.{suffixes[i]}";
                renames[mine[i]["past"]!.GetValue<string>()] = past;
                renames[mine[i]["present"]!.GetValue<string>()] = present;
                mine[i]["past"] = past;
                mine[i]["present"] = present;
            }
        }
        Rename(g, renames);
        stateEntry.Value = states.ToJsonString();
        PositionFromMask(g);
        return string.Join("; ", kinds);
    }

    private static bool SameShape(JsonObject a, JsonObject b) => a["shape"]!.ToJsonString() == b["shape"]!.ToJsonString();

    private static void Rename(GraphProto g, Dictionary<string, string> renames)
    {
        string Map(string name) => renames.TryGetValue(name, out var to) ? to : name;
        // A name the swap kept from the model (softmax takes over past_key_values.N.key) must not collide with a new one.
        foreach (var v in g.Input.Concat(g.Output)) v.Name = Map(v.Name);
        foreach (var v in g.ValueInfo) v.Name = Map(v.Name);
        foreach (var n in g.Node)
        {
            for (var i = 0; i < n.Input.Count; i++) n.Input[i] = Map(n.Input[i]);
            for (var i = 0; i < n.Output.Count; i++) n.Output[i] = Map(n.Output[i]);
        }
    }

    /// <summary>
    /// The swap's past_sequence_length input becomes a value computed from what genai feeds. A model that reads the
    /// attention mask's values (the swap kept it for padding) gets each row's real tokens before this call, the mask's
    /// sum less that of its last S columns: genai pads batched prompts of different lengths on the right, marks the
    /// pads 0 in the mask and appends every new token at the same column for all rows, so a short row's tokens stand
    /// at columns past their positions, and this is where the row really is (what our Generator feeds such a model).
    /// A model that reads only the mask's length gets Shape(attention_mask)[1] - Shape(input_ids)[1], one position for
    /// all rows.
    /// </summary>
    private static void PositionFromMask(GraphProto g)
    {
        var position = g.Input.FirstOrDefault(i => i.Name == PositionOffset.InputName);
        if (position is null) return;
        g.Input.Remove(position);
        var readsMask = g.Input.Any(i => i.Name == GenaiLlamaModel.AttentionMask);
        if (!readsMask)
        {
            var shape = new TensorShapeProto();
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "batch_size" });
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "total_sequence_length" });
            g.Input.Insert(1, new ValueInfoProto
            {
                Name = GenaiLlamaModel.AttentionMask,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Int64, Shape = shape } },
            });
        }
        var ids = g.Input.First().Name;
        const string hint = "genai.position";
        NodeProto Node(string op, string[] inputs, string output, params AttributeProto[] attributes)
        {
            var n = new NodeProto { OpType = op, Name = output };
            n.Input.AddRange(inputs);
            n.Output.Add(output);
            n.Attribute.AddRange(attributes);
            return n;
        }
        TensorProto Int64(string name, long value)
        {
            var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
            t.Dims.Add(1);
            t.Int64Data.Add(value);
            g.Initializer.Add(t);
            return t;
        }
        // Inserted in reverse: each node goes before the ones inserted earlier.
        if (readsMask)
        {
            // [batch]: per row, the mask's sum less the sum of its last S columns (PaddingFeed.RealTokensBefore's sums).
            g.Node.Insert(0, Node("Sub", [hint + ".all", hint + ".now"], PositionOffset.InputName));
            g.Node.Insert(0, Node("ReduceSum", [hint + ".current", hint + ".axes"], hint + ".now", Attr.Int("keepdims", 0)));
            g.Node.Insert(0, Node("ReduceSum", [hint + ".mask", hint + ".axes"], hint + ".all", Attr.Int("keepdims", 0)));
            g.Node.Insert(0, Node("Slice", [hint + ".mask", hint + ".from_end", hint + ".end", hint + ".axes"], hint + ".current"));
            g.Node.Insert(0, Node("Neg", [hint + ".new"], hint + ".from_end"));
            g.Node.Insert(0, Node("Shape", [ids], hint + ".new", Attr.Int("start", 1), Attr.Int("end", 2)));
            g.Node.Insert(0, Node("Cast", [GenaiLlamaModel.AttentionMask], hint + ".mask", Attr.Int("to", (long)TensorProto.Types.DataType.Int64)));
            Int64(hint + ".axes", 1);
            Int64(hint + ".end", long.MaxValue);
            return;
        }
        // [1]: the swap reads the position as a vector of one entry per row or one for all (PositionOffset.Rows).
        g.Node.Insert(0, Node("Sub", [hint + ".total", hint + ".new"], PositionOffset.InputName));
        g.Node.Insert(0, Node("Shape", [ids], hint + ".new", Attr.Int("start", 1), Attr.Int("end", 2)));
        g.Node.Insert(0, Node("Shape", [GenaiLlamaModel.AttentionMask], hint + ".total", Attr.Int("start", 1), Attr.Int("end", 2)));
    }
}
