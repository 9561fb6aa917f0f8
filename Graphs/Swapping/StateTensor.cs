using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// One piece of per-layer memory a swapped model carries between calls: a past input and a present output.
/// Fixed-size state has the same shape in and out. A growing state (a KV cache) has one axis,
/// <see cref="GrowingAxis"/>, that is longer in the present than in the past by the tokens of the call; it starts
/// at length 0. <see cref="InPlace"/>: the operator that reads and writes it takes the past in place when one buffer is
/// bound as both (see <see cref="ModelContract.Write"/>). <see cref="TokenRows"/>: each vector along the last axis is
/// one token's key or value as a call gave it (the operator contract's StateSpec.TokenRows), which a state=int8 rule
/// stores quantised per vector.
/// </summary>
public sealed record StateTensor(string Past, string Present, TensorProto.Types.DataType ElementType, Dim[] Shape, int? GrowingAxis = null,
    bool InPlace = false, bool TokenRows = false)
{
    /// <summary>Symbolic names of the growing axis in the past input and the present output.</summary>
    public const string PastLength = "past_sequence_length", TotalLength = "total_sequence_length";

    /// <summary>The shape at the start of a sequence for a given batch size (the first dimension is the batch; a growing axis is 0).</summary>
    public long[] ShapeFor(long batch) => Shape.Select((d, i) => i == 0 ? batch : i == GrowingAxis ? 0
        : d.Value ?? throw new InvalidOperationException($"state '{Past}' has symbolic dim {d.Symbol} beyond the batch")).ToArray();

    /// <summary>Bytes of one batch row, with the growing axis (if any) at <paramref name="growingLength"/>.</summary>
    public long BytesPerRow(long growingLength) =>
        Shape.Select((d, i) => i == 0 ? 1 : i == GrowingAxis ? growingLength
            : d.Value ?? throw new InvalidOperationException($"state '{Past}' has symbolic dim {d.Symbol} beyond the batch"))
            .Aggregate(1L, (a, d) => a * d) * ElementBytes(ElementType);

    /// <summary>Bytes of one element of a state tensor's type (float16 and bfloat16: 2, int8: 1).</summary>
    public static int ElementBytes(TensorProto.Types.DataType type) => type switch
    {
        TensorProto.Types.DataType.Int8 or TensorProto.Types.DataType.Uint8 => 1,
        TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Int32 => 4,
        TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Double => 8,
        _ => 2,
    };

    /// <summary>The declared shape of the past input (<paramref name="present"/>: of the present output).</summary>
    public Dim[] Declared(bool present) =>
        Shape.Select((d, i) => i == GrowingAxis ? (Dim)(present ? TotalLength : PastLength) : d).ToArray();
}
