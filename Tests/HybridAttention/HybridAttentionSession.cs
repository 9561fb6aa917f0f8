using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.HybridAttention;

/// <summary>HybridAttention's state between calls, as float32/int64 arrays in the operator's layouts.</summary>
public sealed record HybridState(float[] Key, float[] Value, long[] Position, float[] CompressedKey, float[] CompressedValue);

/// <summary>A one-node model around com.onnxattention.HybridAttention, run through a real InferenceSession.</summary>
public sealed class HybridAttentionSession : IDisposable
{
    public static readonly string[] PastNames = ["past_key", "past_value", "past_position", "past_compressed_key", "past_compressed_value"];
    public static readonly string[] PresentNames = ["present_key", "present_value", "present_position", "present_compressed_key", "present_compressed_value"];

    public sealed record Outputs(float[] Y, long[] YShape, HybridState? Present, IReadOnlyDictionary<string, TypedTensor> All)
        : IStateOutputs<HybridState>;

    private readonly TypedModelRunner _runner;
    private readonly TensorProto.Types.DataType _activation;
    private readonly int _pastInputs;
    private readonly int _presentOutputs;

    /// <param name="pastInputs">How many of the five past-state inputs the graph wires (0 to 5).</param>
    /// <param name="presentOutputs">How many of the five present-state outputs the graph wires (0 to 5).</param>
    /// <param name="declareShapes">false: graph inputs carry no shape, so our kernel (not ORT) sees wrong ranks.</param>
    /// <param name="activation">Float, Float16 or Bfloat16: query/key/value/output type. Run takes and returns float32 arrays either way.</param>
    public HybridAttentionSession(HybridAttentionNode.Options options, int pastInputs = 5, int presentOutputs = 5,
        bool declareShapes = true, int intraOpThreads = 1, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float)
    {
        _activation = activation;
        _pastInputs = pastInputs;
        _presentOutputs = presentOutputs;
        _runner = new TypedModelRunner(BuildModel(options, pastInputs, presentOutputs, declareShapes, activation), intraOpThreads);
    }

    public static ModelProto BuildModel(HybridAttentionNode.Options options, int pastInputs = 5, int presentOutputs = 5,
        bool declareShapes = true, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float)
    {
        Dim[][] shapes = [["batch", "kv_heads", "window", "dk"], ["batch", "kv_heads", "window", "dv"], ["batch"],
            ["batch", "kv_heads", "dk"], ["batch", "kv_heads", "rows", "dv"]];
        var state = PastNames.Select((past, i) => new StatefulOpModel.StateSlot(past, PresentNames[i],
            i == 2 ? TensorProto.Types.DataType.Int64 : TensorProto.Types.DataType.Float, shapes[i])).ToList();
        return StatefulOpModel.Build("hybrid_attention_test", state, pastInputs, presentOutputs, declareShapes, activation,
            (b, inputs, outputs) => b.HybridAttention(options, inputs, outputs));
    }

    public Outputs Run(HybridAttentionCase c, int seq, float[] q, float[] k, float[] v, HybridState? past,
        long[]? queryShape = null, long[]? keyShape = null, long[]? valueShape = null, long[]? pastKeyShape = null,
        long[]? positionShape = null, long[]? compressedKeyShape = null, long[]? compressedValueShape = null)
    {
        var inputs = new List<KeyValuePair<string, TypedTensor>>
        {
            new("query", ActivationTensors.Of(q, _activation, queryShape ?? [c.Batch, seq, c.QHeads * c.Dk])),
            new("key", ActivationTensors.Of(k, _activation, keyShape ?? [c.Batch, seq, c.KvHeads * c.Dk])),
            new("value", ActivationTensors.Of(v, _activation, valueShape ?? [c.Batch, seq, c.KvHeads * c.Dv])),
        };
        if (_pastInputs > 0)
        {
            var p = past ?? throw new ArgumentNullException(nameof(past));
            TypedTensor[] tensors =
            [
                TypedTensor.Of(p.Key, pastKeyShape ?? c.CacheKeyShape),
                TypedTensor.Of(p.Value, c.CacheValueShape),
                TypedTensor.Of(p.Position, positionShape ?? [c.Batch]),
                TypedTensor.Of(p.CompressedKey, compressedKeyShape ?? c.CompressedKeyShape),
                TypedTensor.Of(p.CompressedValue, compressedValueShape ?? c.CompressedValueShape),
            ];
            for (var i = 0; i < _pastInputs; i++)
            {
                inputs.Add(new(PastNames[i], tensors[i]));
            }
        }
        var all = _runner.Run(inputs, ["output", .. PresentNames.Take(_presentOutputs)]);
        HybridState? present = _presentOutputs == 5
            ? new HybridState(all[PresentNames[0]].Floats, all[PresentNames[1]].Floats, all[PresentNames[2]].Longs,
                all[PresentNames[3]].Floats, all[PresentNames[4]].Floats)
            : null;
        return new Outputs(ActivationTensors.Floats(all["output"]), all["output"].Shape, present, all);
    }

    public void Dispose() => _runner.Dispose();
}
