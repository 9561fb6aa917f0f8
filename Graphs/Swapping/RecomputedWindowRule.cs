namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// An exact sliding window of W tokens in a layer whose keys and values depend on nothing but each token's id and
/// position (in practice layer 0: embedding, norm, projection, rotary), spelled <c>window:W,keys=ids</c>. The state
/// keeps the window's token ids instead of its keys and values (4 bytes a token instead of 2 * kv_heads * head_dim
/// floats), and each call recomputes the window's keys and values from them with a copy of the model's own nodes
/// that compute that layer's keys and values. Numerically it is <c>window:W</c> in that layer. The swap refuses it
/// in a layer whose keys read the context (see <see cref="RecomputedWindowReplacement"/>).
/// </summary>
public sealed record RecomputedWindowRule(int Window) : AttentionRule, IWindowedRule
{
    public AttentionRule WithWindow(int window) => this with { Window = window };

    /// <summary>The window option that selects this rule.</summary>
    public const string Option = "keys=ids";

    internal override IAttentionReplacement CreateReplacement() => new RecomputedWindowReplacement(this);

    public override string Spelling => $"window:{Window},{Option}";
}
