using System.Globalization;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>What replaces each attention. Parsed from the command-line spelling, e.g. "linear-elu" or "window:16".</summary>
public abstract record AttentionRule
{
    public abstract string Spelling { get; }

    public static AttentionRule Parse(string text)
    {
        var s = text.Trim().ToLowerInvariant();
        if (s == "softmax")
        {
            return new SoftmaxRule();
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
            foreach (var part in parts.Skip(1))
            {
                var kv = part.Split('=', ':');
                sinks = kv is ["sinks", var n] ? NonNegativeInt(n, text, "sinks")
                    : throw new FormatException($"unknown window option '{part}' in '{text}'; expected sinks=N");
            }
            return new WindowRule(window, sinks);
        }
        throw new FormatException($"unknown attention rule '{text}'; expected one of: softmax, linear-elu, linear-relu, linear-identity, window:W[,sinks=S]");
    }

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
    public override string Spelling => FeatureMap switch
    {
        "elu_plus_one" => "linear-elu",
        var m => "linear-" + m,
    };
}

/// <summary>Causal sliding-window softmax over the last W positions, plus optional sink positions.</summary>
public sealed record WindowRule(int Window, int Sinks) : AttentionRule
{
    public override string Spelling => Sinks == 0 ? $"window:{Window}" : $"window:{Window},sinks={Sinks}";
}

/// <summary>
/// The same softmax attention, written as ONNX's standard Attention operator (opset 23) with a growing KV cache:
/// the maths (scale, softcap, causal, masks, grouped KV heads) is unchanged, so the model's results are too.
/// </summary>
public sealed record SoftmaxRule : AttentionRule
{
    public override string Spelling => "softmax";
}
