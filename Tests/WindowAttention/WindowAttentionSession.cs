using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.KernelForms;
using OnnxAttention.Operators.WindowAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.WindowAttention;

/// <summary>A one-node model around com.onnxattention.WindowAttention, run through a real InferenceSession.</summary>
public sealed class WindowAttentionSession : CacheOpSession<WindowState>
{
    public static readonly string[] PastNames = [.. WindowAttentionContract.Contract.States.Select(s => s.Past)];
    public static readonly string[] PresentNames = [.. WindowAttentionContract.Contract.States.Select(s => s.Present)];

    /// <param name="pastInputs">How many of the three past-state inputs the graph wires (0 to 3).</param>
    /// <param name="presentOutputs">How many of the three present-state outputs the graph wires (0 to 3).</param>
    /// <param name="declareShapes">false: graph inputs carry no shape, so our kernel (not ORT) sees wrong ranks.</param>
    /// <param name="activation">Float, Float16 or Bfloat16: query/key/value/output type. Run takes and returns float32 arrays either way.</param>
    public WindowAttentionSession(WindowAttentionNode.Options options, int pastInputs = 3, int presentOutputs = 3,
        bool declareShapes = true, int intraOpThreads = 1, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float, KernelFormSwitch? forms = null)
        : base(BuildModel(options, pastInputs, presentOutputs, declareShapes, activation), PastNames, PresentNames,
            pastInputs, presentOutputs, intraOpThreads, activation, forms)
    {
    }

    public static ModelProto BuildModel(WindowAttentionNode.Options options, int pastInputs = 3, int presentOutputs = 3,
        bool declareShapes = true, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float)
    {
        // past_position is declared [positions] so that both [batch] and [1] can be fed.
        Dim[][] shapes = [["batch", "kv_heads", "rows", "dk"], ["batch", "kv_heads", "rows", "dv"], ["positions"]];
        return BuildModel("window_attention_test", PastNames, PresentNames, WindowAttentionContract.Contract.States.ToList().FindIndex(s => s.IsPosition), shapes, pastInputs, presentOutputs, declareShapes,
            activation, (b, inputs, outputs) => b.WindowAttention(options, inputs, outputs));
    }

    public Outputs Run(WindowAttentionCase c, int seq, float[] q, float[] k, float[] v, WindowState? past,
        long[]? queryShape = null, long[]? keyShape = null, long[]? valueShape = null, long[]? pastKeyShape = null,
        long[]? pastValueShape = null, long[]? positionShape = null) =>
        Run(c, seq, q, k, v, past, queryShape, keyShape, valueShape, p =>
        [
            TypedTensor.Of(p.Key, pastKeyShape ?? c.CacheKeyShape),
            TypedTensor.Of(p.Value, pastValueShape ?? c.CacheValueShape),
            TypedTensor.Of(p.Position, positionShape ?? [p.Position.Length]),
        ]);

    protected override WindowState ReadPresent(IReadOnlyList<TypedTensor> present) =>
        new(present[0].Floats, present[1].Floats, present[2].Longs);
}
