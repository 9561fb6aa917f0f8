using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.LinearAttention;

/// <summary>How the log-space gate (input <c>decay</c>) is laid out along its last axis.</summary>
public enum GateLayout : byte
{
    /// <summary>No gate input (rules linear and delta).</summary>
    None,
    /// <summary>[batch, sequence, kv_num_heads]: one scalar per head scales the whole state.</summary>
    PerHead,
    /// <summary>[batch, sequence, kv_num_heads * head_dim]: one value per key dimension scales that row of the state.</summary>
    PerKey,
}

/// <summary>How the delta rule's write strength (input <c>beta</c>) is laid out along its last axis.</summary>
public enum BetaLayout : byte
{
    /// <summary>No beta input (rules linear and gated).</summary>
    None,
    /// <summary>[batch, sequence, kv_num_heads].</summary>
    PerHead,
    /// <summary>[batch, sequence, 1]: one value per token for every head.</summary>
    Shared,
}

/// <summary>
/// The sizes one LinearAttention call works with, derived from its inputs and checked against each other.
/// Every mismatch is reported with the offending tensor's name and shape.
/// </summary>
public readonly record struct LinearAttentionShapes(int Batch, int SequenceLength, int KeyDim, int ValueDim, bool HasPastState, bool HasPastNormalizer,
    GateLayout Gate = GateLayout.None, BetaLayout Beta = BetaLayout.None)
{
    internal static LinearAttentionShapes From(in KernelContext context, LinearAttentionAttributes a)
    {
        var qkv = QkvShapes.From(context, new HeadAttributes(a.QueryHeads, a.KvHeads, a.Scale),
            LinearAttentionOperator.InputQuery, LinearAttentionOperator.InputKey, LinearAttentionOperator.InputValue);
        long batch = qkv.Batch, seq = qkv.SequenceLength, dk = qkv.KeyDim, dv = qkv.ValueDim;
        var activation = context.Input(LinearAttentionOperator.InputQuery).ElementType;
        QkvShapes.RequireSize(batch * a.KvHeads * dk * dv, "state");

        var hasState = context.HasInput(LinearAttentionOperator.InputPastState);
        var hasNorm = context.HasInput(LinearAttentionOperator.InputPastNormalizer);
        if (hasState)
        {
            LinearAttentionContract.Contract.RequirePast(context, LinearAttentionContract.State, a, batch, dk, dv);
        }
        if (hasNorm)
        {
            LinearAttentionContract.Contract.RequirePast(context, LinearAttentionContract.Normalizer, a, batch, dk, dv);
        }
        if (hasNorm && !hasState)
        {
            throw OrtException.InvalidArgument("past_normalizer was given without past_state");
        }
        if (hasState && !hasNorm && a.Normalize)
        {
            // Starting nu at zero while mu carries history would silently give wrong outputs.
            throw OrtException.InvalidArgument("past_state was given without past_normalizer, which normalize=1 needs");
        }
        var gate = GateFrom(context, a, activation, batch, seq, dk);
        var beta = BetaFrom(context, a, activation, batch, seq);
        return new LinearAttentionShapes((int)batch, (int)seq, (int)dk, (int)dv, hasState, hasNorm, gate, beta);
    }

    // The happy paths below allocate nothing (not even the rule's name): they run on every decode step.
    private static GateLayout GateFrom(in KernelContext context, LinearAttentionAttributes a, OrtElementType type, long batch, long seq, long dk)
    {
        var has = context.HasInput(LinearAttentionOperator.InputDecay);
        if (!UpdateRules.IsGated(a.UpdateRule))
        {
            if (has)
            {
                throw OrtException.InvalidArgument(
                    $"update_rule={UpdateRules.NameOf(a.UpdateRule)} does not use input 'decay' (the log-space gate); leave it out or use "
                    + "update_rule=gated or gated_delta (a fixed decay factor is the 'decay' attribute)");
            }
            return GateLayout.None;
        }
        var perKey = a.KvHeads * dk;
        string Expected() => $"[batch, sequence, kv_num_heads * head_dim] = [{batch}, {seq}, {perKey}] (per key dimension) "
            + $"or [batch, sequence, kv_num_heads] = [{batch}, {seq}, {a.KvHeads}] (per head)";
        if (!has)
        {
            throw OrtException.InvalidArgument(
                $"update_rule={UpdateRules.NameOf(a.UpdateRule)} needs input 'decay' (index 5), the log-space gate of shape {Expected()}");
        }
        var g = context.Input(LinearAttentionOperator.InputDecay);
        RequireType(g, type, "decay");
        if (g.Rank != 3 || g.Dim(0) != batch || g.Dim(1) != seq || (g.Dim(2) != perKey && g.Dim(2) != a.KvHeads))
        {
            throw OrtException.InvalidArgument($"decay has shape {g.ShapeText}; expected {Expected()}");
        }
        // With head_dim 1 both readings coincide; per key is checked first, as ORT does.
        return g.Dim(2) == perKey ? GateLayout.PerKey : GateLayout.PerHead;
    }

    private static BetaLayout BetaFrom(in KernelContext context, LinearAttentionAttributes a, OrtElementType type, long batch, long seq)
    {
        var has = context.HasInput(LinearAttentionOperator.InputBeta);
        if (!UpdateRules.IsDelta(a.UpdateRule))
        {
            if (has)
            {
                throw OrtException.InvalidArgument(
                    $"update_rule={UpdateRules.NameOf(a.UpdateRule)} does not use input 'beta'; leave it out or use update_rule=delta or gated_delta");
            }
            return BetaLayout.None;
        }
        string Expected() => $"[batch, sequence, kv_num_heads] = [{batch}, {seq}, {a.KvHeads}] or [batch, sequence, 1] = [{batch}, {seq}, 1]";
        if (!has)
        {
            throw OrtException.InvalidArgument(
                $"update_rule={UpdateRules.NameOf(a.UpdateRule)} needs input 'beta' (index 6), the write strength of shape {Expected()}");
        }
        var b = context.Input(LinearAttentionOperator.InputBeta);
        RequireType(b, type, "beta");
        if (b.Rank != 3 || b.Dim(0) != batch || b.Dim(1) != seq || (b.Dim(2) != a.KvHeads && b.Dim(2) != 1))
        {
            throw OrtException.InvalidArgument($"beta has shape {b.ShapeText}; expected {Expected()}");
        }
        return b.Dim(2) == a.KvHeads ? BetaLayout.PerHead : BetaLayout.Shared;
    }

    private static void RequireType(in Tensor t, OrtElementType type, string name)
    {
        if (t.ElementType != type)
        {
            throw OrtException.InvalidArgument($"{name} must have the query's element type {type}, got {t.ElementType}");
        }
    }

}
