using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>Builds the nodes that stand in for one matched attention and says which state it carries.</summary>
internal interface IAttentionReplacement
{
    /// <summary>Adds the replacement, routes the attention's output to it, and returns the layer's state tensors.</summary>
    IReadOnlyList<StateTensor> Replace(Graph graph, AttentionMatch match, int layer, Dim batch);
}
