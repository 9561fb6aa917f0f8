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

    public static IReadOnlyList<TensorSpec> Trailing(OrtElementType activation) => [];
}
