using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.KernelForms;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.HybridAttention;

/// <summary>HybridAttention's state between calls, as float32/int64 arrays in the operator's layouts.</summary>
public sealed record HybridState(float[] Key, float[] Value, long[] Position, float[] CompressedKey, float[] CompressedValue);

/// <summary>A one-node model around com.onnxattention.HybridAttention, run through a real InferenceSession.</summary>
public sealed class HybridAttentionSession : CacheOpSession<HybridState>
{
    public static readonly string[] PastNames = [.. HybridAttentionContract.Contract.States.Select(s => s.Past)];
    public static readonly string[] PresentNames = [.. HybridAttentionContract.Contract.States.Select(s => s.Present)];

    /// <param name="pastInputs">How many of the five past-state inputs the graph wires (0 to 5).</param>
    /// <param name="presentOutputs">How many of the five present-state outputs the graph wires (0 to 5).</param>
    /// <param name="declareShapes">false: graph inputs carry no shape, so our kernel (not ORT) sees wrong ranks.</param>
    /// <param name="activation">Float, Float16 or Bfloat16: query/key/value/output type. Run takes and returns float32 arrays either way.</param>
    public HybridAttentionSession(HybridAttentionNode.Options options, int pastInputs = 5, int presentOutputs = 5,
        bool declareShapes = true, int intraOpThreads = 1, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float, KernelFormSwitch? forms = null)
        : base(BuildModel(options, pastInputs, presentOutputs, declareShapes, activation), PastNames, PresentNames,
            pastInputs, presentOutputs, intraOpThreads, activation, forms)
    {
    }

    public static ModelProto BuildModel(HybridAttentionNode.Options options, int pastInputs = 5, int presentOutputs = 5,
        bool declareShapes = true, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float)
    {
        Dim[][] shapes = [["batch", "kv_heads", "window", "dk"], ["batch", "kv_heads", "window", "dv"], ["batch"],
            ["batch", "kv_heads", "dk"], ["batch", "kv_heads", "rows", "dv"]];
        return BuildModel("hybrid_attention_test", PastNames, PresentNames, HybridAttentionContract.Contract.States.ToList().FindIndex(s => s.IsPosition), shapes, pastInputs, presentOutputs, declareShapes,
            activation, (b, inputs, outputs) => b.HybridAttention(options, inputs, outputs));
    }

    public Outputs Run(HybridAttentionCase c, int seq, float[] q, float[] k, float[] v, HybridState? past,
        long[]? queryShape = null, long[]? keyShape = null, long[]? valueShape = null, long[]? pastKeyShape = null,
        long[]? positionShape = null, long[]? compressedKeyShape = null, long[]? compressedValueShape = null) =>
        Run(c, seq, q, k, v, past, queryShape, keyShape, valueShape, p =>
        [
            TypedTensor.Of(p.Key, pastKeyShape ?? c.CacheKeyShape),
            TypedTensor.Of(p.Value, c.CacheValueShape),
            TypedTensor.Of(p.Position, positionShape ?? [c.Batch]),
            TypedTensor.Of(p.CompressedKey, compressedKeyShape ?? c.CompressedKeyShape),
            TypedTensor.Of(p.CompressedValue, compressedValueShape ?? c.CompressedValueShape),
        ]);

    protected override HybridState ReadPresent(IReadOnlyList<TypedTensor> present) =>
        new(present[0].Floats, present[1].Floats, present[2].Longs, present[3].Floats, present[4].Floats);
}
