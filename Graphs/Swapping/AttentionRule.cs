using System.Globalization;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>What replaces each attention. Parsed from the command-line spelling, e.g. "linear-elu" or "window:16".</summary>
public abstract record AttentionRule
{
    public abstract string Spelling { get; }

    /// <summary>What stands in for each attention the rule replaces.</summary>
    internal abstract IAttentionReplacement CreateReplacement();

    public static AttentionRule Parse(string text)
    {
        var s = text.Trim().ToLowerInvariant();
        if (s.Contains('@', StringComparison.Ordinal))
        {
            return LayeredRule.ParseLayered(s);
        }
        var (bare, stateType) = StateTypeRule.Split(s, text);
        if (bare != s)
        {
            return StateTypeRule.Of(Parse(bare), stateType);
        }
        if (s == "softmax")
        {
            return new SoftmaxRule();
        }
        if (s.StartsWith(FittedLinearRule.Prefix, StringComparison.Ordinal) || s.StartsWith(FittedHybridRule.Prefix, StringComparison.Ordinal))
        {
            throw new FormatException($"'{text}' names feature maps fitted by calibrate, whose weights live in the calibrated model: run that model (eval --swapped, logits, generate)");
        }
        if (s.StartsWith("linear-", StringComparison.Ordinal))
        {
            var map = s["linear-".Length..] switch
            {
                "elu" => "elu_plus_one",
                "relu" => "relu",
                "identity" => "identity",
                var other => throw new FormatException($"unknown linear feature map '{other}' in '{text}'; expected linear-elu, linear-relu or linear-identity"),
            };
            return new LinearRule(map);
        }
        if (s.StartsWith("window:", StringComparison.Ordinal))
        {
            var parts = s["window:".Length..].Split(',');
            var window = PositiveInt(parts[0], text, "window size");
            var sinks = 0;
            var keysFromIds = false;
            foreach (var part in parts.Skip(1))
            {
                if (part.Trim() == RecomputedWindowRule.Option)
                {
                    keysFromIds = !keysFromIds ? true : throw new FormatException($"'{text}' names {RecomputedWindowRule.Option} twice");
                    continue;
                }
                var kv = part.Split('=', ':');
                sinks = kv is ["sinks", var n] ? NonNegativeInt(n, text, "sinks")
                    : throw new FormatException($"unknown window option '{part}' in '{text}'; expected sinks=N or {RecomputedWindowRule.Option}");
            }
            if (keysFromIds && sinks > 0)
            {
                throw new FormatException($"'{text}': a window with {RecomputedWindowRule.Option} keeps the ids of its last W tokens only, not sinks");
            }
            return keysFromIds ? new RecomputedWindowRule(window) : new WindowRule(window, sinks);
        }
        if (s.StartsWith("hybrid:", StringComparison.Ordinal))
        {
            var parts = s["hybrid:".Length..].Split(',');
            var compress = "linear";
            foreach (var part in parts.Skip(1))
            {
                compress = part.Split('=', ':') is ["compress", var c and ("linear" or "mean")] ? c
                    : throw new FormatException($"unknown hybrid option '{part}' in '{text}'; expected compress=linear or compress=mean");
            }
            return new HybridRule(PositiveInt(parts[0], text, "window size"), compress);
        }
        if (s.StartsWith("segment:", StringComparison.Ordinal))
        {
            return new SegmentRule(PositiveInt(s["segment:".Length..], text, "segment length"));
        }
        if (s.StartsWith("summary:", StringComparison.Ordinal))
        {
            var spec = s["summary:".Length..];
            if (spec == "cumulative") return new SummaryRule("cumulative", 0, 0.9f);
            if (spec.StartsWith("moving=", StringComparison.Ordinal)) return new SummaryRule("moving", PositiveInt(spec["moving=".Length..], text, "moving-average window"), 0.9f);
            if (spec.StartsWith("ema=", StringComparison.Ordinal)
                && float.TryParse(spec["ema=".Length..], NumberStyles.Float, CultureInfo.InvariantCulture, out var alpha) && alpha >= 0 && alpha < 1)
            {
                return new SummaryRule("ema", 0, alpha);
            }
            throw new FormatException($"unknown summary '{spec}' in '{text}'; expected summary:cumulative, summary:moving=M or summary:ema=ALPHA with ALPHA in [0, 1)");
        }
        throw new FormatException($"unknown attention rule '{text}'; expected one of: {Known}");
    }

    /// <summary>Every spelling, for messages and help texts.</summary>
    public const string Known = "softmax, linear-elu, linear-relu, linear-identity, window:W[,sinks=S], window:W,keys=ids (layer 0: keeps token ids, recomputes keys), hybrid:W[,compress=linear|mean], segment:L, " +
                                "summary:cumulative, summary:moving=M, summary:ema=ALPHA; any but softmax with ,state=float16 or ,state=bfloat16 (state kept in half precision); or one per layer: RULE@LAYERS;RULE@* (LAYERS like 0,2-4)";

    private static int PositiveInt(string s, string text, string what) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0
            ? v : throw new FormatException($"{what} '{s}' in '{text}' must be a positive integer");

    private static int NonNegativeInt(string s, string text, string what) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v)
            ? v : throw new FormatException($"{what} '{s}' in '{text}' must be a non-negative integer");
}

/// <summary>Normalised linear attention with feature map phi on unscaled q and k (epsilon 1e-6).</summary>
public sealed record LinearRule(string FeatureMap) : AttentionRule
{
    internal override IAttentionReplacement CreateReplacement() => new LinearReplacement(this);

    public override string Spelling => FeatureMap switch
    {
        "elu_plus_one" => "linear-elu",
        var m => "linear-" + m,
    };
}

/// <summary>Causal sliding-window softmax over the last W positions, plus optional sink positions.</summary>
public sealed record WindowRule(int Window, int Sinks) : AttentionRule, IWindowedRule
{
    public AttentionRule WithWindow(int window) => this with { Window = window };

    internal override IAttentionReplacement CreateReplacement() => new WindowReplacement(this);

    public override string Spelling => Sinks == 0 ? $"window:{Window}" : $"window:{Window},sinks={Sinks}";
}

/// <summary>A window of W tokens plus a compressed memory (linear state or mean) of evicted ones.</summary>
public sealed record HybridRule(int Window, string Compress) : AttentionRule, IWindowedRule
{
    public AttentionRule WithWindow(int window) => this with { Window = window };

    internal override IAttentionReplacement CreateReplacement() => new HybridReplacement(this);

    public override string Spelling => $"hybrid:{Window},compress={Compress}";
}

/// <summary>Segments of L tokens; each attends to itself and the previous segment.</summary>
public sealed record SegmentRule(int SegmentLength) : AttentionRule
{
    internal override IAttentionReplacement CreateReplacement() => new SegmentReplacement(this);

    public override string Spelling => $"segment:{SegmentLength}";
}

/// <summary>Summary vectors of keys and values: cumulative, moving (window M) or exponential (alpha) averages.</summary>
public sealed record SummaryRule(string Kind, int Window, float Alpha) : AttentionRule
{
    internal override IAttentionReplacement CreateReplacement() => new SummaryReplacement(this);

    public override string Spelling => Kind switch
    {
        "moving" => $"summary:moving={Window}",
        "ema" => $"summary:ema={Alpha.ToString(CultureInfo.InvariantCulture)}",
        _ => "summary:cumulative",
    };
}

/// <summary>
/// The same softmax attention, written as ONNX's standard Attention operator (opset 23) with a growing KV cache:
/// the maths (scale, softcap, causal, masks, grouped KV heads) is unchanged, so the model's results are too. An ORT
/// GroupQueryAttention source keeps ORT's GroupQueryAttention (a faster CPU kernel) for every call it takes, behind an
/// If on the shapes (docs/softmax-rule.md).
/// </summary>
public sealed record SoftmaxRule : AttentionRule
{
    internal override IAttentionReplacement CreateReplacement() => new SoftmaxReplacement();

    public override string Spelling => "softmax";
}

/// <summary>
/// Normalised linear attention on learned Hedgehog feature maps fitted to one layer's softmax attention (calibrate
/// makes these; the weights become initializers of the swapped model). Not spelled on the command line: the
/// spelling only names it.
/// </summary>
public sealed record FittedLinearRule(FeatureProjection Query, FeatureProjection Key) : AttentionRule
{
    internal override IAttentionReplacement CreateReplacement() => new FittedLinearReplacement(this);

    public override string Spelling => $"{Prefix}{Query.Projections}";

    public const string Prefix = "linear-hedgehog:";
}

/// <summary>
/// A window of W tokens plus a linear memory of the evicted ones on learned Hedgehog features, sharing the window's
/// softmax normaliser with a fitted weight per query head (LoLCATs; HybridAttention compress=hedgehog). Made by
/// calibrate; the maps and the mix become initializers of the swapped model.
/// </summary>
public sealed record FittedHybridRule(int Window, FeatureProjection Query, FeatureProjection Key, float[] Mix) : AttentionRule, IWindowedRule
{
    public AttentionRule WithWindow(int window) => this with { Window = window };

    internal override IAttentionReplacement CreateReplacement() => new FittedHybridReplacement(this);

    public override string Spelling => $"{Prefix}{Window},{Query.Projections}";

    public const string Prefix = "hybrid-hedgehog:";

    /// <summary>Records compare arrays by reference; two rules with the same numbers are the same rule.</summary>
    public bool Equals(FittedHybridRule? other) => other is not null && other.Window == Window && other.Query == Query && other.Key == Key
        && other.Mix.AsSpan().SequenceEqual(Mix);

    public override int GetHashCode() => HashCode.Combine(Window, Query, Key);
}
