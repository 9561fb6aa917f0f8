namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// How a tensor's leading axes follow the batch's rows and the call's tokens. A call whose <c>token_mask</c> marks
/// padding runs each row's real tokens alone (<see cref="TokenMaskRows"/>), and this says how to cut out a row.
/// </summary>
public enum BatchLayout
{
    /// <summary>Not per row (attributes given as tensors, weights): passed to every row whole.</summary>
    Whole,

    /// <summary>[batch, sequence, ...]: one slice per token.</summary>
    Tokens,

    /// <summary>[batch, ...]: one slice per row (a state).</summary>
    Rows,

    /// <summary>int64 [batch] or [1] (one value for every row): a count of tokens seen.</summary>
    Counts,

    /// <summary>The token mask itself.</summary>
    TokenMask,
}
