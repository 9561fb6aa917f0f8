using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.WindowAttention;

/// <summary>
/// The sizes of one WindowAttention call and whether it continues from a given state, all checked.
/// <paramref name="SharedPosition"/>: past_position came as [1], one position for every batch row.
/// </summary>
public readonly record struct WindowAttentionShapes(QkvShapes Qkv, bool HasPast, bool SharedPosition)
{
    /// <param name="valuesOnHost">False on the CUDA execution provider: past_position is device memory there, so its values are
    /// not read (only its shape and type are checked).</param>
    internal static WindowAttentionShapes From(in KernelContext context, WindowAttentionAttributes a, bool valuesOnHost = true)
    {
        var qkv = QkvShapes.From(context, a.Heads, WindowAttentionOperator.InputQuery, WindowAttentionOperator.InputKey,
            WindowAttentionOperator.InputValue);
        long b = qkv.Batch, h = a.Heads.KvHeads, r = a.CacheRows, dk = qkv.KeyDim, dv = qkv.ValueDim;
        QkvShapes.RequireSize(b * h * r * Math.Max(dk, dv), "the KV cache");

        var contract = WindowAttentionContract.Contract;
        var hasPast = StateChecks.AllOrNone(context, "WindowAttention's past state", PastGroup);
        var shared = false;
        if (hasPast)
        {
            contract.RequirePast(context, WindowAttentionContract.KeyCache, a, b, dk, dv);
            contract.RequirePast(context, WindowAttentionContract.ValueCache, a, b, dk, dv);
            var position = context.Input(WindowAttentionOperator.InputPastPosition);
            // [1] is accepted for any batch: every row then sits at the same position.
            shared = position.Rank == 1 && position.Dim(0) == 1 && b != 1;
            if (!shared)
            {
                StateChecks.RequireShape(position, "past_position", OrtElementType.Int64, [b], "[batch] (or [1])");
            }
            else if (position.ElementType != OrtElementType.Int64)
            {
                StateChecks.RequireShape(position, "past_position", OrtElementType.Int64, [1], "[1] (or [batch])");
            }
            if (valuesOnHost)
            {
                StateChecks.RequireNonNegative(position, "past_position");
                foreach (var p in position.AsReadOnlySpan<long>())
                {
                    if (p > long.MaxValue - qkv.SequenceLength)
                    {
                        throw OrtException.InvalidArgument($"past_position {p} + sequence {qkv.SequenceLength} overflows int64");
                    }
                }
            }
        }
        return new WindowAttentionShapes(qkv, hasPast, shared);
    }

    private static readonly (int, string)[] PastGroup = WindowAttentionContract.Contract.PastGroup();
}
