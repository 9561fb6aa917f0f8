using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Tests.Support;

/// <summary>
/// The one-node test model every stateful operator uses: query, key, value, then the first
/// <c>pastInputs</c> past-state inputs; output, then the first <c>presentOutputs</c> present-state outputs
/// (present i has past i's type and shape).
/// </summary>
public static class StatefulOpModel
{
    public sealed record StateSlot(string Past, string Present, TensorProto.Types.DataType Type, Dim[] Shape);

    /// <param name="declareShapes">false: graph inputs carry no shape, so our kernel (not ORT) sees wrong ranks.</param>
    public static ModelProto Build(string graphName, IReadOnlyList<StateSlot> state, int pastInputs, int presentOutputs, bool declareShapes,
        TensorProto.Types.DataType activation, Action<ModelBuilder, List<string>, List<string>> addNode)
    {
        var b = new ModelBuilder(graphName);
        void Declare(string name, TensorProto.Types.DataType type, params Dim[] shape)
        {
            if (declareShapes) b.Input(name, type, shape);
            else b.InputOfAnyShape(name, type);
        }
        Declare("query", activation, "batch", "seq", "q_hidden");
        Declare("key", activation, "batch", "seq", "k_hidden");
        Declare("value", activation, "batch", "seq", "v_hidden");
        var inputs = new List<string> { "query", "key", "value" };
        foreach (var s in state.Take(pastInputs))
        {
            Declare(s.Past, s.Type, s.Shape);
            inputs.Add(s.Past);
        }
        var outputs = new List<string> { "output" };
        outputs.AddRange(state.Take(presentOutputs).Select(s => s.Present));
        addNode(b, inputs, outputs);
        b.Output("output", activation, "batch", "seq", "o_hidden");
        foreach (var s in state.Take(presentOutputs))
        {
            b.Output(s.Present, s.Type, s.Shape);
        }
        return b.Build();
    }
}
