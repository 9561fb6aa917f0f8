using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Attention.Patterns;

/// <summary>One way exporters write attention. Reports every candidate: a match, or a miss with its reason.</summary>
public interface IAttentionPattern
{
    string Name { get; }

    IEnumerable<OneOf> Find(Graph graph, ValueShapes shapes);
}

/// <summary>A candidate's outcome: exactly one of the two is set.</summary>
public readonly record struct OneOf(AttentionMatch? Match, AttentionMiss? Miss)
{
    public static implicit operator OneOf(AttentionMatch m) => new(m, null);

    public static implicit operator OneOf(AttentionMiss m) => new(null, m);
}
