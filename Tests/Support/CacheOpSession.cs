using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;
using OnnxAttention.KernelForms;

namespace OnnxAttention.Tests.Support;

/// <summary>
/// What every cache operator's one-node test session shares: the model (query, key, value, the first
/// <c>pastInputs</c> past-state inputs; output, the first <c>presentOutputs</c> present-state outputs), the run
/// with float32 arrays whatever the activation type, and the present state read back when every present output is
/// wired. The operator's session names its state tensors, their order and shapes, and how its state maps onto them.
/// </summary>
public abstract class CacheOpSession<TState> : IDisposable
    where TState : class
{
    public sealed record Outputs(float[] Y, long[] YShape, TState? Present, IReadOnlyDictionary<string, TypedTensor> All)
        : IStateOutputs<TState>;

    private readonly TypedModelRunner _runner;
    private readonly TensorProto.Types.DataType _activation;
    private readonly string[] _pastNames;
    private readonly string[] _presentNames;
    private readonly int _pastInputs;
    private readonly int _presentOutputs;

    /// <param name="session">Where the model runs; null: a session with our CPU operators (Tests/Cuda passes the emulated CUDA variant's).</param>
    protected CacheOpSession(ModelProto model, string[] pastNames, string[] presentNames, int pastInputs, int presentOutputs,
        int intraOpThreads, TensorProto.Types.DataType activation, KernelFormSwitch? forms, Func<ModelProto, OwnedSession>? session = null)
    {
        _activation = activation;
        _pastNames = pastNames;
        _presentNames = presentNames;
        _pastInputs = pastInputs;
        _presentOutputs = presentOutputs;
        _runner = session is null ? new TypedModelRunner(model, intraOpThreads, forms) : new TypedModelRunner(session(model));
    }

    /// <summary>The one-node model; state slot i is past i / present i with shape <paramref name="shapes"/>[i],
    /// int64 for <paramref name="int64Slot"/> and float32 otherwise.</summary>
    protected static ModelProto BuildModel(string graphName, string[] pastNames, string[] presentNames, int int64Slot, Dim[][] shapes,
        int pastInputs, int presentOutputs, bool declareShapes, TensorProto.Types.DataType activation,
        Action<ModelBuilder, List<string>, List<string>> addNode)
    {
        var state = pastNames.Select((past, i) => new StatefulOpModel.StateSlot(past, presentNames[i],
            i == int64Slot ? TensorProto.Types.DataType.Int64 : TensorProto.Types.DataType.Float, shapes[i])).ToList();
        return StatefulOpModel.Build(graphName, state, pastInputs, presentOutputs, declareShapes, activation, addNode);
    }

    /// <summary>The present state from a run that wired every present output.</summary>
    protected abstract TState ReadPresent(IReadOnlyList<TypedTensor> present);

    /// <summary>Runs q/k/v (null shapes: the case's own for <paramref name="seq"/> tokens) and, when the graph wires
    /// past inputs, the first of <paramref name="pastTensors"/> (built from <paramref name="past"/>, which must then be given).</summary>
    protected Outputs Run<TCase>(TCase c, int seq, float[] q, float[] k, float[] v, TState? past,
        long[]? queryShape, long[]? keyShape, long[]? valueShape, Func<TState, TypedTensor[]> pastTensors)
        where TCase : IAttentionCase<TState>
    {
        var inputs = new List<KeyValuePair<string, TypedTensor>>
        {
            new("query", ActivationTensors.Of(q, _activation, queryShape ?? [c.Batch, seq, c.QHeads * c.Dk])),
            new("key", ActivationTensors.Of(k, _activation, keyShape ?? [c.Batch, seq, c.KvHeads * c.Dk])),
            new("value", ActivationTensors.Of(v, _activation, valueShape ?? [c.Batch, seq, c.KvHeads * c.Dv])),
        };
        if (_pastInputs > 0)
        {
            var tensors = pastTensors(past ?? throw new ArgumentNullException(nameof(past)));
            for (var i = 0; i < _pastInputs; i++)
            {
                inputs.Add(new(_pastNames[i], tensors[i]));
            }
        }
        var all = _runner.Run(inputs, ["output", .. _presentNames.Take(_presentOutputs)]);
        var present = _presentOutputs == _presentNames.Length ? ReadPresent([.. _presentNames.Select(n => all[n])]) : null;
        return new Outputs(ActivationTensors.Floats(all["output"]), all["output"].Shape, present, all);
    }

    public void Dispose()
    {
        _runner.Dispose();
        GC.SuppressFinalize(this);
    }
}
