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

    public sealed record Outputs(float[] Y, long[] YShape, SegmentState? Present, IReadOnlyDictionary<string, TypedTensor> All);

    private readonly TypedModelRunner _runner;
    private readonly int _pastInputs;
    private readonly int _presentOutputs;

    /// <param name="pastInputs">How many of the five past-state inputs the graph wires (0 to 5).</param>
    /// <param name="presentOutputs">How many of the five present-state outputs the graph wires (0 to 5).</param>
    /// <param name="declareShapes">false: graph inputs carry no shape, so our kernel (not ORT) sees wrong ranks.</param>
    public SegmentAttentionSession(SegmentAttentionNode.Options options, int pastInputs = 5, int presentOutputs = 5,
        bool declareShapes = true, int intraOpThreads = 1)
    {
        _pastInputs = pastInputs;
        _presentOutputs = presentOutputs;
        _runner = new TypedModelRunner(BuildModel(options, pastInputs, presentOutputs, declareShapes), intraOpThreads);
    }

    public static ModelProto BuildModel(SegmentAttentionNode.Options options, int pastInputs = 5, int presentOutputs = 5,
        bool declareShapes = true, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float)
    {
        const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;
        const TensorProto.Types.DataType I = TensorProto.Types.DataType.Int64;
        var b = new ModelBuilder("segment_attention_test");
        void Declare(string name, TensorProto.Types.DataType type, params Dim[] shape)
        {
            if (declareShapes) b.Input(name, type, shape);
            else b.InputOfAnyShape(name, type);
        }
        Declare("query", activation, "batch", "seq", "q_hidden");
        Declare("key", activation, "batch", "seq", "k_hidden");
        Declare("value", activation, "batch", "seq", "v_hidden");
        Dim[][] stateShapes = [["batch", "kv_heads", "segment", "dk"], ["batch", "kv_heads", "segment", "dv"],
            ["batch", "kv_heads", "segment", "dk"], ["batch", "kv_heads", "segment", "dv"], ["batch"]];
        for (var i = 0; i < pastInputs; i++)
        {
            Declare(PastNames[i], i == 4 ? I : F, stateShapes[i]);
        }
        var outputs = new List<string> { "output" };
        outputs.AddRange(PresentNames.Take(presentOutputs));
        b.SegmentAttention(options, ["query", "key", "value", .. PastNames.Take(pastInputs)], outputs);
        b.Output("output", activation, "batch", "seq", "o_hidden");
        for (var i = 0; i < presentOutputs; i++)
        {
            b.Output(PresentNames[i], i == 4 ? I : F, stateShapes[i]);
        }
        return b.Build();
    }

    public Outputs Run(SegmentAttentionCase c, int seq, float[] q, float[] k, float[] v, SegmentState? past,
        long[]? queryShape = null, long[]? keyShape = null, long[]? valueShape = null, long[]? memoryKeyShape = null,
        long[]? segmentValueShape = null, long[]? positionShape = null)
    {
        var inputs = new List<KeyValuePair<string, TypedTensor>>
        {
            new("query", TypedTensor.Of(q, queryShape ?? [c.Batch, seq, c.QHeads * c.Dk])),
            new("key", TypedTensor.Of(k, keyShape ?? [c.Batch, seq, c.KvHeads * c.Dk])),
            new("value", TypedTensor.Of(v, valueShape ?? [c.Batch, seq, c.KvHeads * c.Dv])),
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
        return new Outputs(all["output"].Floats, all["output"].Shape, present, all);
    }

    public void Dispose() => _runner.Dispose();
}
