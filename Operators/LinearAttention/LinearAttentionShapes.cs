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
    /// <summary>Largest element count of any tensor we index with int arithmetic.</summary>
    private const long MaxElements = int.MaxValue;

    internal static LinearAttentionShapes From(in KernelContext context, LinearAttentionAttributes a)
    {
        var q = context.Input(LinearAttentionOperator.InputQuery);
        var k = context.Input(LinearAttentionOperator.InputKey);
        var v = context.Input(LinearAttentionOperator.InputValue);
        RequireRank(q, 3, "query", "[batch, sequence, q_num_heads * head_dim]");
        RequireRank(k, 3, "key", "[batch, sequence, kv_num_heads * head_dim]");
        RequireRank(v, 3, "value", "[batch, sequence, kv_num_heads * v_head_dim]");
        if (!FloatIO.IsSupported(q.ElementType) || k.ElementType != q.ElementType || v.ElementType != q.ElementType)
        {
            throw OrtException.InvalidArgument(
                $"query, key and value must all be float32 or all float16, got {q.ElementType}, {k.ElementType}, {v.ElementType}");
        }

        long batch = q.Dim(0), seq = q.Dim(1);
        if (k.Dim(0) != batch || v.Dim(0) != batch || k.Dim(1) != seq || v.Dim(1) != seq)
        {
            throw OrtException.InvalidArgument(
                $"query {q.ShapeText}, key {k.ShapeText} and value {v.ShapeText} must agree on batch and sequence length");
        }
        if (q.Dim(2) <= 0 || q.Dim(2) % a.QueryHeads != 0)
        {
            throw OrtException.InvalidArgument(
                $"query's last dimension {q.Dim(2)} is not a positive multiple of q_num_heads={a.QueryHeads}");
        }
        var dk = q.Dim(2) / a.QueryHeads;
        if (k.Dim(2) != a.KvHeads * dk)
        {
            throw OrtException.InvalidArgument(
                $"key's last dimension {k.Dim(2)} must be kv_num_heads * head_dim = {a.KvHeads} * {dk} = {a.KvHeads * dk} (query {q.ShapeText}, q_num_heads={a.QueryHeads})");
        }
        if (v.Dim(2) <= 0 || v.Dim(2) % a.KvHeads != 0)
        {
            throw OrtException.InvalidArgument(
                $"value's last dimension {v.Dim(2)} is not a positive multiple of kv_num_heads={a.KvHeads}");
        }
        var dv = v.Dim(2) / a.KvHeads;
        RequireSize(q, "query");
        RequireSize(k, "key");
        RequireSize(v, "value");
        CheckedSize(batch * a.QueryHeads * seq * dv, "output");
        CheckedSize(batch * a.KvHeads * dk * dv, "state");

        var hasState = context.HasInput(LinearAttentionOperator.InputPastState);
        var hasNorm = context.HasInput(LinearAttentionOperator.InputPastNormalizer);
        if (hasState)
        {
            var s = context.Input(LinearAttentionOperator.InputPastState);
            RequireFloat(s, "past_state");
            if (s.Rank != 4 || s.Dim(0) != batch || s.Dim(1) != a.KvHeads || s.Dim(2) != dk || s.Dim(3) != dv)
            {
                throw OrtException.InvalidArgument(
                    $"past_state has shape {s.ShapeText}; expected [batch, kv_num_heads, head_dim, v_head_dim] = [{batch}, {a.KvHeads}, {dk}, {dv}]");
            }
        }
        if (hasNorm)
        {
            var z = context.Input(LinearAttentionOperator.InputPastNormalizer);
            RequireFloat(z, "past_normalizer");
            if (z.Rank != 3 || z.Dim(0) != batch || z.Dim(1) != a.KvHeads || z.Dim(2) != dk)
            {
                throw OrtException.InvalidArgument(
                    $"past_normalizer has shape {z.ShapeText}; expected [batch, kv_num_heads, head_dim] = [{batch}, {a.KvHeads}, {dk}]");
            }
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
        var gate = GateFrom(context, a, q.ElementType, batch, seq, dk);
        var beta = BetaFrom(context, a, q.ElementType, batch, seq);
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

    private static void RequireRank(in Tensor t, int rank, string name, string layout)
    {
        if (t.Rank != rank)
        {
            throw OrtException.InvalidArgument($"{name} must have rank {rank} {layout}, got shape {t.ShapeText}");
        }
    }

    private static void RequireFloat(in Tensor t, string name)
    {
        if (t.ElementType != OrtElementType.Float)
        {
            throw OrtException.InvalidArgument($"{name} must be float32 (state is always float32), got {t.ElementType}");
        }
    }

    private static void RequireSize(in Tensor t, string name) => CheckedSize(t.ElementCount, name);

    private static void CheckedSize(long elements, string name)
    {
        if (elements > MaxElements)
        {
            throw OrtException.InvalidArgument($"{name} would hold {elements} elements; at most {MaxElements} are supported");
        }
    }
}
