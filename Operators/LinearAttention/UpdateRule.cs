namespace OnnxAttention.Operators.LinearAttention;

/// <summary>How a token writes into the state; the same four rules as ORT's and ONNX's LinearAttention.</summary>
public enum UpdateRule
{
    /// <summary>S = S + k v^T.</summary>
    Linear,
    /// <summary>S = exp(g) * S + k v^T, with the log-space gate g from the decay input.</summary>
    Gated,
    /// <summary>S = S + k (beta (v - S^T k))^T: writes only what the state does not already retrieve for k.</summary>
    Delta,
    /// <summary>S' = exp(g) * S; S = S' + k (beta (v - S'^T k))^T.</summary>
    GatedDelta,
}

public static class UpdateRules
{
    /// <summary>Attribute spellings, as written in a model's <c>update_rule</c> attribute.</summary>
    public static IReadOnlyDictionary<string, UpdateRule> ByName { get; } = new Dictionary<string, UpdateRule>
    {
        ["linear"] = UpdateRule.Linear,
        ["gated"] = UpdateRule.Gated,
        ["delta"] = UpdateRule.Delta,
        ["gated_delta"] = UpdateRule.GatedDelta,
    };

    public static string NameOf(UpdateRule rule) => ByName.First(kv => kv.Value == rule).Key;

    /// <summary>True for the rules that read the per-token log-space gate (input <c>decay</c>).</summary>
    public static bool IsGated(UpdateRule rule) => rule is UpdateRule.Gated or UpdateRule.GatedDelta;

    /// <summary>True for the rules that write a correction beta (v - S^T k) (input <c>beta</c>).</summary>
    public static bool IsDelta(UpdateRule rule) => rule is UpdateRule.Delta or UpdateRule.GatedDelta;
}
