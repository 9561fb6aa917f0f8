using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Io;

/// <summary>
/// How many inputs and outputs the standard ONNX ops the swap meets may have (from the ONNX operator schemas,
/// across the opsets exporters use), checked before any code indexes a node's inputs or outputs and before ONNX
/// Runtime sees the model: ORT 1.31 trusts some of these counts and aborts the process on a mismatch (a Split with
/// one output more than its split sizes). Ops not listed are left to ORT's own schema checks.
/// </summary>
public static class OpArity
{
    private const int Many = int.MaxValue;

    private sealed record Counts(int MinIn, int MaxIn, int MinOut, int MaxOut);

    private static readonly Dictionary<string, Counts> Standard = Build();

    private static Dictionary<string, Counts> Build()
    {
        var table = new Dictionary<string, Counts>(StringComparer.Ordinal);
        void Add(Counts c, params string[] ops)
        {
            foreach (var op in ops) table[op] = c;
        }
        Add(new(1, 1, 1, 1), "Identity", "Cast", "Shape", "Size", "Sqrt", "Neg", "Abs", "Tanh", "Exp", "Log", "Relu", "Sigmoid",
            "Softmax", "LogSoftmax", "Not", "Erf", "Reciprocal", "IsNaN", "IsInf", "Sin", "Cos", "Floor", "Ceil", "Round", "Sign",
            "Transpose", "ConstantOfShape", "Gelu", "Softplus", "Elu", "LeakyRelu", "HardSigmoid", "Flatten", "NonZero");
        Add(new(2, 2, 1, 1), "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual",
            "And", "Or", "Xor", "PRelu", "MatMul", "CastLike", "Gather", "GatherElements", "Expand", "Reshape", "CumSum");
        Add(new(1, Many, 1, 1), "Max", "Min", "Sum", "Mean", "Concat");
        Add(new(3, 3, 1, 1), "Where", "Range");
        Add(new(1, 2, 1, 1), "Squeeze", "Unsqueeze", "Trilu", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2");
        Add(new(1, 5, 1, 1), "Slice");
        Add(new(1, 2, 1, Many), "Split");
        Add(new(0, 0, 1, 1), "Constant");
        Add(new(1, 3, 1, 2), "Dropout");
        Add(new(2, 3, 1, 3), "LayerNormalization");
        Add(new(2, 2, 1, 1), "RMSNormalization");
        Add(new(2, 3, 1, 1), "Gemm");
        Add(new(3, 4, 1, 1), "RotaryEmbedding");
        Add(new(3, 7, 1, 4), "Attention");
        Add(new(1, 4, 1, 1), "Pad");
        Add(new(2, 2, 1, 1), "Tile");
        return table;
    }

    /// <summary>ONNX Runtime's attention ops the swap analyses (com.microsoft); their outputs are indexed from 0.</summary>
    private static readonly Dictionary<string, Counts> Microsoft = new(StringComparer.Ordinal)
    {
        ["MultiHeadAttention"] = new(1, 12, 1, 4),
        ["GroupQueryAttention"] = new(1, 14, 1, 4),
    };

    /// <summary>Throws naming the node when it has an input or output count its op cannot have.</summary>
    public static void Check(NodeProto n, string what)
    {
        var table = n.Domain.Length == 0 || n.Domain == "ai.onnx" ? Standard : n.Domain == "com.microsoft" ? Microsoft : null;
        if (table is null || !table.TryGetValue(n.OpType, out var c)) return;
        if (n.Input.Count < c.MinIn || n.Input.Count > c.MaxIn)
        {
            throw new GraphException($"{what}: node '{n.Name}' ({n.OpType}) has {n.Input.Count} inputs; {n.OpType} takes {Range(c.MinIn, c.MaxIn)}");
        }
        if (n.Output.Count < c.MinOut || n.Output.Count > c.MaxOut)
        {
            throw new GraphException($"{what}: node '{n.Name}' ({n.OpType}) has {n.Output.Count} outputs; {n.OpType} gives {Range(c.MinOut, c.MaxOut)}");
        }
        if (n.OpType == "Split" && table == Standard) CheckSplit(n, what);
    }

    private static string Range(int min, int max) => min == max ? $"{min}" : max == Many ? $"{min} or more" : $"{min} to {max}";

    /// <summary>A Split's outputs must match its split sizes or num_outputs: ORT indexes its outputs by them.</summary>
    private static void CheckSplit(NodeProto n, string what)
    {
        var declared = n.Attribute.FirstOrDefault(a => a.Name == "num_outputs") is { } num ? num.I
            : n.Attribute.FirstOrDefault(a => a.Name == "split") is { } sizes ? sizes.Ints.Count
            : (long?)null;
        if (declared is { } d && d != n.Output.Count)
        {
            throw new GraphException($"{what}: node '{n.Name}' (Split) has {n.Output.Count} outputs but declares {d} splits");
        }
    }

    /// <summary>A Split whose split sizes come from a constant input: their count must match its outputs.</summary>
    public static void CheckSplitSizes(NodeProto n, TensorProto? sizes, string what)
    {
        if (sizes is null || n.OpType != "Split" || (n.Domain.Length > 0 && n.Domain != "ai.onnx")) return;
        var count = sizes.Dims.Count == 1 ? sizes.Dims[0] : sizes.Dims.Count == 0 ? 1 : -1;
        if (count != n.Output.Count)
        {
            throw new GraphException($"{what}: node '{n.Name}' (Split) has {n.Output.Count} outputs but its split sizes '{sizes.Name}' give {count} pieces");
        }
    }
}
