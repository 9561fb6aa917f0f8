using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SegmentAttention;

/// <summary>SegmentAttention's state between calls, as float32/int64 arrays in the operator's layouts.</summary>
public sealed record SegmentState(float[] MemoryKey, float[] MemoryValue, float[] SegmentKey, float[] SegmentValue, long[] Position);

/// <summary>A one-node model around com.onnxattention.SegmentAttention, run through a real InferenceSession.</summary>
public sealed class SegmentAttentionSession : IDisposable
{
    public static readonly string[] PastNames = ["past_memory_key", "past_memory_value", "past_segment_key", "past_segment_value", "past_position"];
    public static readonly string[] PresentNames = ["present_memory_key", "present_memory_value", "present_segment_key", "present_segment_value", "present_position"];

    public sealed record Outputs(float[] Y, long[] YShape, SegmentState? Present, IReadOnlyDictionary<string, TypedTensor> All)
        : IStateOutputs<SegmentState>;

    private readonly TypedModelRunner _runner;
    private readonly TensorProto.Types.DataType _activation;
    private readonly int _pastInputs;
    private readonly int _presentOutputs;

    /// <param name="pastInputs">How many of the five past-state inputs the graph wires (0 to 5).</param>
    /// <param name="presentOutputs">How many of the five present-state outputs the graph wires (0 to 5).</param>
    /// <param name="declareShapes">false: graph inputs carry no shape, so our kernel (not ORT) sees wrong ranks.</param>
    /// <param name="activation">Float, Float16 or Bfloat16: query/key/value/output type. Run takes and returns float32 arrays either way.</param>
    public SegmentAttentionSession(SegmentAttentionNode.Options options, int pastInputs = 5, int presentOutputs = 5,
        bool declareShapes = true, int intraOpThreads = 1, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float)
    {
        _activation = activation;
        _pastInputs = pastInputs;
        _presentOutputs = presentOutputs;
        _runner = new TypedModelRunner(BuildModel(options, pastInputs, presentOutputs, declareShapes, activation), intraOpThreads);
    }

    public static ModelProto BuildModel(SegmentAttentionNode.Options options, int pastInputs = 5, int presentOutputs = 5,
        bool declareShapes = true, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float)
    {
        Dim[][] shapes = [["batch", "kv_heads", "segment", "dk"], ["batch", "kv_heads", "segment", "dv"],
            ["batch", "kv_heads", "segment", "dk"], ["batch", "kv_heads", "segment", "dv"], ["batch"]];
        var state = PastNames.Select((past, i) => new StatefulOpModel.StateSlot(past, PresentNames[i],
            i == 4 ? TensorProto.Types.DataType.Int64 : TensorProto.Types.DataType.Float, shapes[i])).ToList();
        return StatefulOpModel.Build("segment_attention_test", state, pastInputs, presentOutputs, declareShapes, activation,
            (b, inputs, outputs) => b.SegmentAttention(options, inputs, outputs));
    }

    public Outputs Run(SegmentAttentionCase c, int seq, float[] q, float[] k, float[] v, SegmentState? past,
        long[]? queryShape = null, long[]? keyShape = null, long[]? valueShape = null, long[]? memoryKeyShape = null,
        long[]? segmentValueShape = null, long[]? positionShape = null)
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
                TypedTensor.Of(p.MemoryKey, memoryKeyShape ?? c.KeyStateShape),
                TypedTensor.Of(p.MemoryValue, c.ValueStateShape),
                TypedTensor.Of(p.SegmentKey, c.KeyStateShape),
                TypedTensor.Of(p.SegmentValue, segmentValueShape ?? c.ValueStateShape),
                TypedTensor.Of(p.Position, positionShape ?? [c.Batch]),
            ];
            for (var i = 0; i < _pastInputs; i++)
            {
                inputs.Add(new(PastNames[i], tensors[i]));
            }
        }
        var all = _runner.Run(inputs, ["output", .. PresentNames.Take(_presentOutputs)]);
        SegmentState? present = _presentOutputs == 5
            ? new SegmentState(all[PresentNames[0]].Floats, all[PresentNames[1]].Floats, all[PresentNames[2]].Floats,
                all[PresentNames[3]].Floats, all[PresentNames[4]].Longs)
            : null;
        return new Outputs(ActivationTensors.Floats(all["output"]), all["output"].Shape, present, all);
    }

    public void Dispose() => _runner.Dispose();
}
