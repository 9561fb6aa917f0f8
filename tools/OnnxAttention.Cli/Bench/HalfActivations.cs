using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Cli.Bench;

/// <summary>
/// A bench model with float16 activations (bench-ops --type float16): query, key, value and output (q, k, v, y) of
/// our operators, whose state stays float32 as their contract says, and every float tensor of ORT's own contrib
/// operators (GroupQueryAttention's KV cache, LinearAttention's state), which take one type T throughout. ORT 1.32's
/// CUDA provider runs GroupQueryAttention in float16 or bfloat16 only: a float32 one falls back to its CPU provider.
/// </summary>
public static class HalfActivations
{
    private static readonly HashSet<string> Activations = ["q", "k", "v", "y"];

    public static (ModelProto Model, IReadOnlyDictionary<string, (Array Data, long[] Shape)> Inputs, IReadOnlyDictionary<string, (Array Data, long[] Shape)> Outputs) Convert(
        ModelProto model, IReadOnlyDictionary<string, (Array Data, long[] Shape)> inputs, IReadOnlyDictionary<string, (Array Data, long[] Shape)> outputs)
    {
        var half = model.Clone();
        var ortOwn = half.Graph.Node.Any(n => n.Domain == "com.microsoft");
        var converted = new HashSet<string>();
        foreach (var v in half.Graph.Input.Concat(half.Graph.Output))
        {
            if (v.Type.TensorType.ElemType == (int)TensorProto.Types.DataType.Float && (ortOwn || Activations.Contains(v.Name)))
            {
                v.Type.TensorType.ElemType = (int)TensorProto.Types.DataType.Float16;
                converted.Add(v.Name);
            }
        }
        Dictionary<string, (Array, long[])> Values(IReadOnlyDictionary<string, (Array Data, long[] Shape)> values) => values.ToDictionary(
            kv => kv.Key,
            kv => converted.Contains(kv.Key) && kv.Value.Data is float[] f
                ? ((Array)Array.ConvertAll(f, x => new Float16(BitConverter.HalfToUInt16Bits((Half)x))), kv.Value.Shape)
                : (kv.Value.Data, kv.Value.Shape));
        return (half, Values(inputs), Values(outputs));
    }
}
