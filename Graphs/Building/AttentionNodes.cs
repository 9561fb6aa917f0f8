using OnnxAttention.Operators.Registration;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Graphs.Building;

/// <summary>Adds a node of one of our operators as its <see cref="OperatorContract{TAttributes}"/> declares it.</summary>
public static class AttentionNodes
{
    /// <summary>
    /// <paramref name="attributeValues"/>: one value per attribute of the contract, in its order, written as given (a test
    /// may spell a value the operator refuses). Inputs: query, key, value, then the optional past state and further
    /// inputs in the contract's order ("" leaves one out); outputs: output, then the optional present state.
    /// </summary>
    public static ModelBuilder AttentionNode<TAttributes>(this ModelBuilder builder, OperatorContract<TAttributes> contract,
        object[] attributeValues, IReadOnlyList<string> inputs, IReadOnlyList<string> outputs, string? name = null)
    {
        if (attributeValues.Length != contract.Attributes.Count)
        {
            throw new ArgumentException($"{contract.Name} takes {contract.Attributes.Count} attribute values, got {attributeValues.Length}");
        }
        builder.Opset(OperatorRegistry.Domain, 1);
        return builder.Node(contract.Name, TrimTrailingEmpty(inputs, 3), TrimTrailingEmpty(outputs, 1), OperatorRegistry.Domain, name,
            [.. contract.Attributes.Select((spec, i) => Attr.For(spec, attributeValues[i]))]);
    }

    /// <summary>Trailing absent optional names are dropped rather than written as "".</summary>
    private static List<string> TrimTrailingEmpty(IReadOnlyList<string> names, int required)
    {
        var list = names.ToList();
        while (list.Count > required && list[^1].Length == 0)
        {
            list.RemoveAt(list.Count - 1);
        }
        return list;
    }
}
