using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Cli.Verify;

/// <summary>Sizes shared by every case: batch, query and KV heads (grouped), key and value head dims.</summary>
public sealed record ParityShape(int Batch, int QHeads, int KvHeads, int KeyDim, int ValueDim)
{
    public int QueryWidth => QHeads * KeyDim;

    public int KeyWidth => KvHeads * KeyDim;

    public int ValueWidth => KvHeads * ValueDim;

    public int OutputWidth => QHeads * ValueDim;

    public override string ToString() => $"B{Batch} H{QHeads}/{KvHeads} dk{KeyDim} dv{ValueDim}";
}

/// <summary>A per-token input after the states (a gate, a write strength): [batch, seq, Width], drawn in [Low, High].</summary>
public sealed record TokenInput(string Name, int Width, float Low, float High);

/// <summary>A further input that is a weight, not a per-token input: written into the model as an initializer (float32).</summary>
public sealed record ConstantInput(string Name, float[] Values, long[] Shape);

/// <summary>One state of a rule, as its operator's contract declares it.</summary>
public sealed record ParityState(string Past, string Present, bool IsPosition, bool InPlace);

/// <summary>
/// One operator with one set of attributes (a "rule"), as a one-node model: query, key, value, every past state,
/// the further inputs it feeds; output and every present state. The state names, their order and which may be
/// updated in place come from the operator's contract.
/// </summary>
public sealed class ParityRule
{
    private readonly Func<ModelBuilder, IReadOnlyList<string>, IReadOnlyList<string>, ModelBuilder> _addNode;
    private readonly IReadOnlyList<string> _furtherInputs;
    private readonly IReadOnlyList<ConstantInput> _constants;

    private ParityRule(string op, string label, IReadOnlyList<ParityState> states, IReadOnlyList<string> furtherInputs,
        IReadOnlyList<TokenInput> fed, Func<ModelBuilder, IReadOnlyList<string>, IReadOnlyList<string>, ModelBuilder> addNode,
        IReadOnlyList<ConstantInput>? constants = null)
    {
        Operator = op;
        Label = label;
        States = states;
        _furtherInputs = furtherInputs;
        Fed = fed;
        _addNode = addNode;
        _constants = constants ?? [];
        var unknown = fed.Select(f => f.Name).Concat(_constants.Select(c => c.Name)).Except(furtherInputs).ToList();
        if (unknown.Count > 0) throw new ArgumentException($"{op} has no input {string.Join(", ", unknown)}");
    }

    /// <param name="addNode">Adds the node given its inputs (query, key, value, pasts, further inputs in the contract's
    /// order, "" where not fed) and outputs (output, presents): one of the Graphs.Building node extensions.</param>
    public static ParityRule Of<TAttributes>(OperatorContract<TAttributes> contract, string label,
        Func<ModelBuilder, IReadOnlyList<string>, IReadOnlyList<string>, ModelBuilder> addNode, params TokenInput[] fed) =>
        new(contract.Name, label,
            [.. contract.States.Select(s => new ParityState(s.Past, s.Present, s.IsPosition, s.InPlace))],
            [.. contract.FurtherInputs(OrtElementType.Float).Select(t => t.Name)], fed, addNode);

    /// <summary>This rule with weights among its further inputs (e.g. HybridAttention compress=hedgehog's feature maps).</summary>
    public ParityRule WithConstants(params ConstantInput[] constants) =>
        new(Operator, Label, States, _furtherInputs, Fed, _addNode, constants);

    public string Operator { get; }

    /// <summary>The attributes in words, e.g. "window=8,sinks=2".</summary>
    public string Label { get; }

    public IReadOnlyList<ParityState> States { get; }

    public IReadOnlyList<TokenInput> Fed { get; }

    public override string ToString() => $"{Operator} {Label}";

    /// <summary>
    /// The one-node model; <paramref name="withPast"/> false: no past inputs (a sequence's first call);
    /// <paramref name="withMask"/>: a token_mask input [batch, L] (int64, 1 a token, 0 padding).
    /// </summary>
    public ModelProto Build(ActivationType type, ParityShape s, bool withPast, bool withMask = false)
    {
        var t = type.Proto();
        var b = new ModelBuilder($"{Operator}_parity")
            .Input("query", t, "batch", "seq", s.QueryWidth)
            .Input("key", t, "batch", "seq", s.KeyWidth)
            .Input("value", t, "batch", "seq", s.ValueWidth);
        foreach (var state in States.Where(_ => withPast))
        {
            b.InputOfAnyShape(state.Past, StateType(state));
        }
        foreach (var f in Fed)
        {
            b.Input(f.Name, t, "batch", "seq", f.Width);
        }
        foreach (var c in _constants)
        {
            b.Initializer(Tensors.Float(c.Name, c.Values, c.Shape));
        }
        var fedNames = Fed.Select(f => f.Name).Concat(_constants.Select(c => c.Name)).ToHashSet();
        var inputs = new List<string> { "query", "key", "value" };
        inputs.AddRange(States.Select(x => withPast ? x.Past : ""));
        inputs.AddRange(_furtherInputs.Select(n => fedNames.Contains(n) ? n : ""));
        var outputs = new List<string> { "output" };
        outputs.AddRange(States.Select(x => x.Present));
        _addNode(b, inputs, outputs);
        if (withMask)
        {
            b.Input(AttentionInputs.TokenMaskName, TensorProto.Types.DataType.Int64, "batch", "mask_length");
        }
        b.Output("output", t, "batch", "seq", s.OutputWidth);
        foreach (var state in States)
        {
            b.OutputOfAnyShape(state.Present, StateType(state));
        }
        var model = b.Build();
        if (withMask)
        {
            // In the contract's place, whichever node builder added the node (not all of them name the trailing inputs).
            var node = model.Graph.Node.Single();
            var at = 3 + States.Count + _furtherInputs.ToList().IndexOf(AttentionInputs.TokenMaskName);
            while (node.Input.Count <= at) node.Input.Add("");
            node.Input[at] = AttentionInputs.TokenMaskName;
        }
        return model;
    }

    private static TensorProto.Types.DataType StateType(ParityState s) =>
        s.IsPosition ? TensorProto.Types.DataType.Int64 : TensorProto.Types.DataType.Float;
}
