using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// Optional inputs every attention operator takes after its own (see <see cref="OperatorContract{TAttributes}.FurtherInputs"/>):
/// declaring one here adds it to every operator's schema, at the end, so existing input indices keep their meaning.
/// </summary>
public static class AttentionInputs
{
    /// <summary>Inputs query, key, value and the first past state; outputs output and the first present state.</summary>
    public const int Query = 0, Key = 1, Value = 2, FirstPast = 3, Output = 0, FirstPresent = 1;

    /// <summary>The name of the optional per-token mask (see <see cref="TokenMaskRows"/>).</summary>
    public const string TokenMaskName = "token_mask";

    public static IReadOnlyList<TensorSpec> Trailing(OrtElementType activation) =>
    [
        new(TokenMaskName, OrtElementType.Int64, Optional: true, Layout: BatchLayout.TokenMask,
            Doc: "[batch, L] int64, L >= sequence: the last sequence columns mark this call's tokens, 1 a token, 0 padding " +
                "(an attention_mask [batch, past + sequence] may be passed as it is). A pad is no key, no value and no part of " +
                "any state; a padded row gives what its real tokens give alone, and its output at pads is 0. Token counts " +
                "(past_position, past_count) then count real tokens only."),
    ];
}
