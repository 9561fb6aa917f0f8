using OnnxAttention.Graphs.Ir;
using DataType = OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType;

namespace OnnxAttention.Graphs.Attention.Matchers;

/// <summary>
/// Values for a decoder's graph inputs at a chosen batch B, past length P and new-token count S, so a
/// <see cref="StaticEvaluator"/> can run what the model computes from shapes and masks: a KV cache (rank 4) is
/// [B, heads, P, d] (its symbolic dimensions after the batch are P), the attention mask is [B, P + S], anything
/// else is [B, S, ...]. Values are zeros (true for bool), the mask's are given.
/// </summary>
public static class ProbeInputs
{
    public static Dictionary<string, StaticTensor>? Bind(Graph g, int b, int p, int s, string? mask = null, long[]? maskValues = null)
    {
        var bound = new Dictionary<string, StaticTensor>();
        foreach (var input in g.Inputs.Where(i => !g.Initializers.ContainsKey(i.Name)))
        {
            if (input.Type?.TensorType is not { } tensor || tensor.Shape is null) continue;
            var type = (DataType)tensor.ElemType;
            var dims = tensor.Shape.Dim;
            long[] shape;
            if (input.Name == mask)
            {
                shape = [b, p + s];
            }
            else
            {
                var symbolic = dims.Count == 4 ? p : s;
                shape = dims.Select((d, a) => d.HasDimValue ? d.DimValue : a == 0 ? b : symbolic).ToArray();
            }
            var count = StaticTensor.Count(shape);
            if (count > StaticEvaluator.MaxElements) return null;
            var data = input.Name == mask && maskValues is not null ? maskValues.Select(x => (double)x).ToArray()
                : Enumerable.Repeat(type == DataType.Bool || input.Name == mask ? 1.0 : 0.0, (int)count).ToArray();
            bound[input.Name] = new StaticTensor(type, shape, data);
        }
        return bound;
    }
}
