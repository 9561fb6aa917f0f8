using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.KernelForms;
using OnnxAttention.Operators.SummaryAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SummaryAttention;

/// <summary>SummaryAttention's state between calls, as float32/int64 arrays in the operator's layouts.</summary>
public sealed record SummaryState(float[] KeySummary, float[] ValueSummary, long[] Count, float[] KeyWindow, float[] ValueWindow);

/// <summary>A one-node model around com.onnxattention.SummaryAttention, run through a real InferenceSession.</summary>
public sealed class SummaryAttentionSession : CacheOpSession<SummaryState>
{
    public static readonly string[] PastNames = [.. SummaryAttentionContract.Contract.States.Select(s => s.Past)];
    public static readonly string[] PresentNames = [.. SummaryAttentionContract.Contract.States.Select(s => s.Present)];

    /// <param name="pastInputs">How many of the five past-state inputs the graph wires (0, 3 or 5).</param>
    /// <param name="presentOutputs">How many of the five present-state outputs the graph wires (0 to 5).</param>
    /// <param name="declareShapes">false: graph inputs carry no shape, so our kernel (not ORT) sees wrong ranks.</param>
    /// <param name="activation">Float, Float16 or Bfloat16: query/key/value/output type. Run takes and returns float32 arrays either way.</param>
    public SummaryAttentionSession(SummaryAttentionNode.Options options, int pastInputs, int presentOutputs = 5,
        bool declareShapes = true, int intraOpThreads = 1, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float, KernelFormSwitch? forms = null)
        : base(BuildModel(options, pastInputs, presentOutputs, declareShapes, activation), PastNames, PresentNames,
            pastInputs, presentOutputs, intraOpThreads, activation, forms)
    {
    }

    public static ModelProto BuildModel(SummaryAttentionNode.Options options, int pastInputs, int presentOutputs = 5,
        bool declareShapes = true, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float)
    {
        Dim[][] shapes = [["batch", "kv_heads", "slots", "dk"], ["batch", "kv_heads", "slots", "dv"], ["batch"],
            ["batch", "kv_heads", "window", "dk"], ["batch", "kv_heads", "window", "dv"]];
        return BuildModel("summary_attention_test", PastNames, PresentNames, SummaryAttentionContract.Contract.States.ToList().FindIndex(s => s.IsPosition), shapes, pastInputs, presentOutputs, declareShapes,
            activation, (b, inputs, outputs) => b.SummaryAttention(options, inputs, outputs));
    }

    public Outputs Run(SummaryAttentionCase c, int seq, float[] q, float[] k, float[] v, SummaryState? past,
        long[]? queryShape = null, long[]? keyShape = null, long[]? keySummaryShape = null, long[]? countShape = null,
        long[]? keyWindowShape = null, long[]? valueShape = null) =>
        Run(c, seq, q, k, v, past, queryShape, keyShape, valueShape, p =>
        [
            TypedTensor.Of(p.KeySummary, keySummaryShape ?? c.KeySummaryShape),
            TypedTensor.Of(p.ValueSummary, c.ValueSummaryShape),
            TypedTensor.Of(p.Count, countShape ?? [c.Batch]),
            TypedTensor.Of(p.KeyWindow, keyWindowShape ?? c.KeyWindowShape),
            TypedTensor.Of(p.ValueWindow, c.ValueWindowShape),
        ]);

    protected override SummaryState ReadPresent(IReadOnlyList<TypedTensor> present) =>
        new(present[0].Floats, present[1].Floats, present[2].Longs, present[3].Floats, present[4].Floats);
}
