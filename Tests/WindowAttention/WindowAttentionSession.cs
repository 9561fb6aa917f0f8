using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.WindowAttention;

/// <summary>A one-node model around com.onnxattention.WindowAttention, run through a real InferenceSession.</summary>
public sealed class WindowAttentionSession : IDisposable
{
    public static readonly string[] PastNames = ["past_key_cache", "past_value_cache", "past_position"];
    public static readonly string[] PresentNames = ["present_key_cache", "present_value_cache", "present_position"];

    public sealed record Outputs(float[] Y, long[] YShape, WindowState? Present, IReadOnlyDictionary<string, TypedTensor> All)
        : IStateOutputs<WindowState>;

    private readonly TypedModelRunner _runner;
    private readonly TensorProto.Types.DataType _activation;
    private readonly int _pastInputs;
    private readonly int _presentOutputs;

    /// <param name="pastInputs">How many of the three past-state inputs the graph wires (0 to 3).</param>
    /// <param name="presentOutputs">How many of the three present-state outputs the graph wires (0 to 3).</param>
    /// <param name="declareShapes">false: graph inputs carry no shape, so our kernel (not ORT) sees wrong ranks.</param>
    /// <param name="activation">Float, Float16 or Bfloat16: query/key/value/output type. Run takes and returns float32 arrays either way.</param>
    public WindowAttentionSession(WindowAttentionNode.Options options, int pastInputs = 3, int presentOutputs = 3,
        bool declareShapes = true, int intraOpThreads = 1, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float)
    {
        _activation = activation;
        _pastInputs = pastInputs;
        _presentOutputs = presentOutputs;
        _runner = new TypedModelRunner(BuildModel(options, pastInputs, presentOutputs, declareShapes, activation), intraOpThreads);
    }

    public static ModelProto BuildModel(WindowAttentionNode.Options options, int pastInputs = 3, int presentOutputs = 3,
        bool declareShapes = true, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float)
    {
        // past_position is declared [positions] so that both [batch] and [1] can be fed.
        Dim[][] shapes = [["batch", "kv_heads", "rows", "dk"], ["batch", "kv_heads", "rows", "dv"], ["positions"]];
        var state = PastNames.Select((past, i) => new StatefulOpModel.StateSlot(past, PresentNames[i],
            i == 2 ? TensorProto.Types.DataType.Int64 : TensorProto.Types.DataType.Float, shapes[i])).ToList();
        return StatefulOpModel.Build("window_attention_test", state, pastInputs, presentOutputs, declareShapes, activation,
            (b, inputs, outputs) => b.WindowAttention(options, inputs, outputs));
    }

    public Outputs Run(WindowAttentionCase c, int seq, float[] q, float[] k, float[] v, WindowState? past,
        long[]? queryShape = null, long[]? keyShape = null, long[]? valueShape = null, long[]? pastKeyShape = null,
        long[]? pastValueShape = null, long[]? positionShape = null)
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
                TypedTensor.Of(p.Value, pastValueShape ?? c.CacheValueShape),
                TypedTensor.Of(p.Position, positionShape ?? [p.Position.Length]),
            ];
            for (var i = 0; i < _pastInputs; i++)
            {
                inputs.Add(new(PastNames[i], tensors[i]));
            }
        }
        var all = _runner.Run(inputs, ["output", .. PresentNames.Take(_presentOutputs)]);
        WindowState? present = _presentOutputs == 3
            ? new WindowState(all[PresentNames[0]].Floats, all[PresentNames[1]].Floats, all[PresentNames[2]].Longs)
            : null;
        return new Outputs(ActivationTensors.Floats(all["output"]), all["output"].Shape, present, all);
    }

    public void Dispose() => _runner.Dispose();
}
