using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>Builds the nodes that stand in for one matched attention and says which state it carries.</summary>
internal interface IAttentionReplacement
{
    /// <summary>
    /// Null when this replacement can stand in for <paramref name="match"/>, else why not. By default the
    /// requirements of a fixed-size memory (causal self-attention with no other mask), with scores that are not
    /// soft-capped.
    /// </summary>
    string? Refusal(AttentionMatch match) =>
        AttentionRequirements.CausalMemory(match) ?? AttentionRequirements.NoSoftcap(match);

    /// <summary>The lowest default-domain (ai.onnx) opset the replacement's nodes need; 0 when any will do.</summary>
    int RequiredOpset(AttentionMatch match) => 0;

    /// <summary>Adds the replacement, routes the attention's output to it, and returns the layer's state tensors.</summary>
    IReadOnlyList<StateTensor> Replace(Graph graph, AttentionMatch match, int layer, Dim batch);

    /// <summary>
    /// Called once every layer is replaced and shape-derived positions are offset (<see cref="PositionOffset.Apply"/>),
    /// for a replacement that copies parts of the model as they then are (see <see cref="RecomputedWindowReplacement"/>).
    /// </summary>
    void Finish(Graph graph)
    {
    }
}
