using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Cli.Bench;

/// <summary>
/// A bench model with 16-bit activations (bench-ops --type float16 or bfloat16, and the bfloat16 prefill of
/// --targets): query, key, value and output (q, k, v, y) of our operators, whose state stays float32 as their contract
/// says, and every float tensor of ORT's own contrib operators (GroupQueryAttention's KV cache, LinearAttention's
/// state), which take one type T throughout. ORT 1.32's CUDA provider runs GroupQueryAttention in float16 or bfloat16
/// only: a float32 one falls back to its CPU provider.
/// </summary>
public static class HalfActivations
{
    private const TensorProto.Types.DataType Float = TensorProto.Types.DataType.Float;
    private static readonly HashSet<string> Activations = ["q", "k", "v", "y"];

    public static (ModelProto Model, IReadOnlyDictionary<string, (Array Data, long[] Shape)> Inputs, IReadOnlyDictionary<string, (Array Data, long[] Shape)> Outputs) Convert(
        ModelProto model, IReadOnlyDictionary<string, (Array Data, long[] Shape)> inputs, IReadOnlyDictionary<string, (Array Data, long[] Shape)> outputs,
        TensorProto.Types.DataType to = TensorProto.Types.DataType.Float16)
    {
        if (to is not (TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16))
        {
            throw new ArgumentOutOfRangeException(nameof(to), to, "16-bit activations are float16 or bfloat16");
        }
        var half = model.Clone();
        var ortOwn = half.Graph.Node.Any(n => n.Domain == "com.microsoft");
        var converted = new HashSet<string>();
        foreach (var v in half.Graph.Input.Concat(half.Graph.Output))
        {
            if (v.Type.TensorType.ElemType == (int)Float && (ortOwn || Activations.Contains(v.Name)))
            {
                v.Type.TensorType.ElemType = (int)to;
                converted.Add(v.Name);
            }
        }
        Array Narrow(float[] f) => to == TensorProto.Types.DataType.Float16
            ? Array.ConvertAll(f, x => new Float16(BitConverter.HalfToUInt16Bits((Half)x)))
            : Array.ConvertAll(f, x => (BFloat16)x);
        Dictionary<string, (Array, long[])> Values(IReadOnlyDictionary<string, (Array Data, long[] Shape)> values) => values.ToDictionary(
            kv => kv.Key,
            kv => converted.Contains(kv.Key) && kv.Value.Data is float[] f ? (Narrow(f), kv.Value.Shape) : (kv.Value.Data, kv.Value.Shape));
        return (half, Values(inputs), Values(outputs));
    }
}
