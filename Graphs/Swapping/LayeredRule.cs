using System.Globalization;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// One rule per attention layer, spelled <c>RULE@LAYERS;RULE@LAYERS;...</c>: LAYERS is <c>*</c> (every layer no
/// other entry names) or a comma-separated list of layer indices and ranges <c>a-b</c>, counted in the order the
/// swap finds the attention (what <c>inspect</c> lists). Example: <c>window:16@0;window:4,sinks=2@1-3;window:2@*</c>.
/// Each layer gets exactly one rule: a layer named twice, or one that no entry covers, is refused at the swap.
/// </summary>
public sealed record LayeredRule(IReadOnlyList<LayeredRule.Entry> Entries) : AttentionRule
{
    /// <summary>A rule and the layers it applies to; <see cref="Layers"/> null means <c>*</c>.</summary>
    public sealed record Entry(AttentionRule Rule, IReadOnlyList<int>? Layers);

    public override string Spelling => string.Join(';', Entries.Select(e => $"{e.Rule.Spelling}@{(e.Layers is null ? "*" : Ranges(e.Layers))}"));

    /// <summary>A per-layer rule has no replacement of its own: the swap asks each layer's rule.</summary>
    internal override IAttentionReplacement CreateReplacement() =>
        throw new InvalidOperationException($"'{Spelling}' names a rule per layer; the swap creates each layer's replacement");

    /// <summary>The rule of each of <paramref name="layers"/> layers.</summary>
    public IReadOnlyList<AttentionRule> ForLayers(int layers)
    {
        var rules = new AttentionRule?[layers];
        foreach (var entry in Entries.Where(e => e.Layers is not null))
        {
            foreach (var layer in entry.Layers!)
            {
                if (layer >= layers)
                {
                    throw new FormatException($"'{Spelling}' names layer {layer}, but the model has {layers} attention layer(s) (0 to {layers - 1})");
                }
                if (rules[layer] is { } earlier)
                {
                    throw new FormatException($"'{Spelling}' gives layer {layer} two rules ({earlier.Spelling} and {entry.Rule.Spelling})");
                }
                rules[layer] = entry.Rule;
            }
        }
        var rest = Entries.FirstOrDefault(e => e.Layers is null)?.Rule;
        for (var layer = 0; layer < layers; layer++)
        {
            rules[layer] ??= rest ?? throw new FormatException($"'{Spelling}' gives layer {layer} no rule; name it or add RULE@* for the other layers");
        }
        return rules!;
    }

    /// <summary>The layered spelling; <paramref name="text"/> holds '@'.</summary>
    internal static LayeredRule ParseLayered(string text)
    {
        var entries = new List<Entry>();
        foreach (var part in text.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var at = part.LastIndexOf('@');
            if (at <= 0) throw new FormatException($"'{part}' in '{text}' is not RULE@LAYERS (LAYERS: * or a list like 0,2-4)");
            var rule = Parse(part[..at]);
            if (rule is LayeredRule) throw new FormatException($"'{part}' in '{text}' nests a per-layer rule");
            var layers = part[(at + 1)..].Trim();
            if (layers == "*")
            {
                if (entries.Any(e => e.Layers is null)) throw new FormatException($"'{text}' has two RULE@* entries");
                entries.Add(new Entry(rule, null));
            }
            else
            {
                entries.Add(new Entry(rule, LayerList(layers, text)));
            }
        }
        if (entries.Count == 0) throw new FormatException($"'{text}' names no rule");
        return new LayeredRule(entries);
    }

    private static int[] LayerList(string layers, string text)
    {
        var list = new List<int>();
        foreach (var item in layers.Split(',', StringSplitOptions.TrimEntries))
        {
            var bounds = item.Split('-');
            if (bounds.Length is 1 or 2 && bounds.All(b => int.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
            {
                var from = int.Parse(bounds[0], CultureInfo.InvariantCulture);
                var to = int.Parse(bounds[^1], CultureInfo.InvariantCulture);
                if (to < from) throw new FormatException($"layer range '{item}' in '{text}' runs backwards");
                list.AddRange(Enumerable.Range(from, to - from + 1));
            }
            else
            {
                throw new FormatException($"layers '{layers}' in '{text}' must be * or a list of layer indices and ranges like 0,2-4");
            }
        }
        return [.. list];
    }

    private static string Ranges(IReadOnlyList<int> layers)
    {
        var parts = new List<string>();
        var sorted = layers.Order().ToArray();
        for (var i = 0; i < sorted.Length;)
        {
            var j = i;
            while (j + 1 < sorted.Length && sorted[j + 1] == sorted[j] + 1) j++;
            parts.Add(j == i ? sorted[i].ToString(CultureInfo.InvariantCulture) : $"{sorted[i]}-{sorted[j]}");
            i = j + 1;
        }
        return string.Join(',', parts);
    }

    /// <summary>
    /// Records compare their lists by reference; two plans with the same spelling are the same plan.
    /// </summary>
    public bool Equals(LayeredRule? other) => other is not null && other.Spelling == Spelling;

    public override int GetHashCode() => Spelling.GetHashCode(StringComparison.Ordinal);
}
