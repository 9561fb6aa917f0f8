using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>One piece of per-layer memory a swapped model carries between calls: a past input and a present output.</summary>
public sealed record StateTensor(string Past, string Present, TensorProto.Types.DataType ElementType, Dim[] Shape)
{
    /// <summary>The fixed shape for a given batch size (the first dimension is the batch).</summary>
    public long[] ShapeFor(long batch) => Shape.Select((d, i) => i == 0 ? batch : d.Value ?? throw new InvalidOperationException($"state '{Past}' has symbolic dim {d.Symbol} beyond the batch")).ToArray();
}
