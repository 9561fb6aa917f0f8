using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// One state tensor of a swapped model as its <see cref="ModelContract"/> records it: past input, present output,
/// element type, and its shape after the batch dim at the start of a sequence. A growing state (a KV cache) has
/// <see cref="GrowingAxis"/> (counted in the full shape, batch included) at length 0 in <see cref="TailShape"/>; each
/// call's present is that call's past plus its tokens. <see cref="InPlace"/>: one buffer may be bound as both past and
/// present (only our operators read and write it, and they take the past in place).
/// </summary>
public sealed record StateEntry(string Past, string Present, TensorProto.Types.DataType ElementType, long[] TailShape, int? GrowingAxis = null,
    bool InPlace = false)
{
    public bool Grows => GrowingAxis is not null;

    /// <summary>Elements of one batch row at the start of a sequence (0 for a growing state); bounded when read.</summary>
    public long ElementsPerRow => TailShape.Aggregate(1L, (a, d) => checked(a * d));

    /// <summary>Bytes of one batch row at the start of a sequence, from the element type.</summary>
    public long BytesPerRow => checked(ElementsPerRow * StateTensor.ElementBytes(ElementType));

    /// <summary>Bytes one token adds to one batch row of a growing state.</summary>
    public long BytesPerToken => checked(ElementsPerToken * StateTensor.ElementBytes(ElementType));

    /// <summary>Elements one token adds to one batch row of a growing state (0 for fixed-size state).</summary>
    public long ElementsPerToken => Grows ? TailShape.Where((_, i) => i + 1 != GrowingAxis).Aggregate(1L, (a, d) => checked(a * d)) : 0;

    /// <summary>The shape at the start of a sequence for <paramref name="batch"/> rows.</summary>
    public long[] ShapeFor(long batch) => [batch, .. TailShape];

    /// <summary>Elements of the whole batch at the start of a sequence, refused past what one array can hold.</summary>
    public int ElementsFor(long batch)
    {
        var n = checked(batch * ElementsPerRow);
        return n <= Array.MaxLength ? (int)n
            : throw new ModelContractException($"state '{Past}' would hold {n} elements for a batch of {batch}; at most {Array.MaxLength} are supported");
    }
}
