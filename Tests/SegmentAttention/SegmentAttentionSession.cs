using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.KernelForms;
using OnnxAttention.Operators.SegmentAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SegmentAttention;

/// <summary>SegmentAttention's state between calls, as float32/int64 arrays in the operator's layouts.</summary>
public sealed record SegmentState(float[] MemoryKey, float[] MemoryValue, float[] SegmentKey, float[] SegmentValue, long[] Position);

/// <summary>A one-node model around com.onnxattention.SegmentAttention, run through a real InferenceSession.</summary>
public sealed class SegmentAttentionSession : CacheOpSession<SegmentState>
{
    public static readonly string[] PastNames = [.. SegmentAttentionContract.Contract.States.Select(s => s.Past)];
    public static readonly string[] PresentNames = [.. SegmentAttentionContract.Contract.States.Select(s => s.Present)];

    /// <param name="pastInputs">How many of the five past-state inputs the graph wires (0 to 5).</param>
    /// <param name="presentOutputs">How many of the five present-state outputs the graph wires (0 to 5).</param>
    /// <param name="declareShapes">false: graph inputs carry no shape, so our kernel (not ORT) sees wrong ranks.</param>
    /// <param name="activation">Float, Float16 or Bfloat16: query/key/value/output type. Run takes and returns float32 arrays either way.</param>
    public SegmentAttentionSession(SegmentAttentionNode.Options options, int pastInputs = 5, int presentOutputs = 5,
        bool declareShapes = true, int intraOpThreads = 1, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float, KernelFormSwitch? forms = null)
        : base(BuildModel(options, pastInputs, presentOutputs, declareShapes, activation), PastNames, PresentNames,
            pastInputs, presentOutputs, intraOpThreads, activation, forms)
    {
    }

    public static ModelProto BuildModel(SegmentAttentionNode.Options options, int pastInputs = 5, int presentOutputs = 5,
        bool declareShapes = true, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float)
    {
        Dim[][] shapes = [["batch", "kv_heads", "segment", "dk"], ["batch", "kv_heads", "segment", "dv"],
            ["batch", "kv_heads", "segment", "dk"], ["batch", "kv_heads", "segment", "dv"], ["batch"]];
        return BuildModel("segment_attention_test", PastNames, PresentNames, SegmentAttentionContract.Contract.States.ToList().FindIndex(s => s.IsPosition), shapes, pastInputs, presentOutputs, declareShapes,
            activation, (b, inputs, outputs) => b.SegmentAttention(options, inputs, outputs));
    }

    public Outputs Run(SegmentAttentionCase c, int seq, float[] q, float[] k, float[] v, SegmentState? past,
        long[]? queryShape = null, long[]? keyShape = null, long[]? valueShape = null, long[]? memoryKeyShape = null,
        long[]? segmentValueShape = null, long[]? positionShape = null) =>
        Run(c, seq, q, k, v, past, queryShape, keyShape, valueShape, p =>
        [
            TypedTensor.Of(p.MemoryKey, memoryKeyShape ?? c.KeyStateShape),
            TypedTensor.Of(p.MemoryValue, c.ValueStateShape),
            TypedTensor.Of(p.SegmentKey, c.KeyStateShape),
            TypedTensor.Of(p.SegmentValue, segmentValueShape ?? c.ValueStateShape),
            TypedTensor.Of(p.Position, positionShape ?? [c.Batch]),
        ]);

    protected override SegmentState ReadPresent(IReadOnlyList<TypedTensor> present) =>
        new(present[0].Floats, present[1].Floats, present[2].Floats, present[3].Floats, present[4].Longs);
}
