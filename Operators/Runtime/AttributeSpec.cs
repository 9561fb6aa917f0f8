namespace OnnxAttention.Operators.Runtime;

public enum AttributeKind
{
    Int,
    Float,
    String,
}

/// <summary>An attribute an operator reads, with the default used when a node leaves it out (null: required).</summary>
public sealed record AttributeSpec(string Name, AttributeKind Kind, object? Default, string Doc = "")
{
    public bool Required => Default is null;
}
