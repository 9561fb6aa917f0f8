using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SummaryAttention;

/// <summary>SummaryAttention's state between calls, as float32/int64 arrays in the operator's layouts.</summary>
public sealed record SummaryState(float[] KeySummary, float[] ValueSummary, long[] Count, float[] KeyWindow, float[] ValueWindow);

/// <summary>A one-node model around com.onnxattention.SummaryAttention, run through a real InferenceSession.</summary>
public sealed class SummaryAttentionSession : IDisposable
{
    public static readonly string[] PastNames = ["past_key_summary", "past_value_summary", "past_count", "past_key_window", "past_value_window"];
    public static readonly string[] PresentNames = ["present_key_summary", "present_value_summary", "present_count", "present_key_window", "present_value_window"];

    public sealed record Outputs(float[] Y, long[] YShape, SummaryState? Present, IReadOnlyDictionary<string, TypedTensor> All)
        : IStateOutputs<SummaryState>;

    private readonly TypedModelRunner _runner;
    private readonly TensorProto.Types.DataType _activation;
    private readonly int _pastInputs;
    private readonly int _presentOutputs;

    /// <param name="pastInputs">How many of the five past-state inputs the graph wires (0, 3 or 5).</param>
    /// <param name="presentOutputs">How many of the five present-state outputs the graph wires (0 to 5).</param>
    /// <param name="declareShapes">false: graph inputs carry no shape, so our kernel (not ORT) sees wrong ranks.</param>
    /// <param name="activation">Float, Float16 or Bfloat16: query/key/value/output type. Run takes and returns float32 arrays either way.</param>
    public SummaryAttentionSession(SummaryAttentionNode.Options options, int pastInputs, int presentOutputs = 5,
        bool declareShapes = true, int intraOpThreads = 1, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float)
    {
        _activation = activation;
        _pastInputs = pastInputs;
        _presentOutputs = presentOutputs;
        _runner = new TypedModelRunner(BuildModel(options, pastInputs, presentOutputs, declareShapes, activation), intraOpThreads);
    }

    public static ModelProto BuildModel(SummaryAttentionNode.Options options, int pastInputs, int presentOutputs = 5,
        bool declareShapes = true, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float)
    {
        Dim[][] shapes = [["batch", "kv_heads", "slots", "dk"], ["batch", "kv_heads", "slots", "dv"], ["batch"],
            ["batch", "kv_heads", "window", "dk"], ["batch", "kv_heads", "window", "dv"]];
        var state = PastNames.Select((past, i) => new StatefulOpModel.StateSlot(past, PresentNames[i],
            i == 2 ? TensorProto.Types.DataType.Int64 : TensorProto.Types.DataType.Float, shapes[i])).ToList();
        return StatefulOpModel.Build("summary_attention_test", state, pastInputs, presentOutputs, declareShapes, activation,
            (b, inputs, outputs) => b.SummaryAttention(options, inputs, outputs));
    }

    public Outputs Run(SummaryAttentionCase c, int seq, float[] q, float[] k, float[] v, SummaryState? past,
        long[]? queryShape = null, long[]? keyShape = null, long[]? keySummaryShape = null, long[]? countShape = null,
        long[]? keyWindowShape = null, long[]? valueShape = null)
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
                TypedTensor.Of(p.KeySummary, keySummaryShape ?? c.KeySummaryShape),
                TypedTensor.Of(p.ValueSummary, c.ValueSummaryShape),
                TypedTensor.Of(p.Count, countShape ?? [c.Batch]),
                TypedTensor.Of(p.KeyWindow, keyWindowShape ?? c.KeyWindowShape),
                TypedTensor.Of(p.ValueWindow, c.ValueWindowShape),
            ];
            for (var i = 0; i < _pastInputs; i++)
            {
                inputs.Add(new(PastNames[i], tensors[i]));
            }
        }
        var all = _runner.Run(inputs, ["output", .. PresentNames.Take(_presentOutputs)]);
        SummaryState? present = _presentOutputs == 5
            ? new SummaryState(all[PresentNames[0]].Floats, all[PresentNames[1]].Floats, all[PresentNames[2]].Longs,
                all[PresentNames[3]].Floats, all[PresentNames[4]].Floats)
            : null;
        return new Outputs(ActivationTensors.Floats(all["output"]), all["output"].Shape, present, all);
    }

    public void Dispose() => _runner.Dispose();
}
