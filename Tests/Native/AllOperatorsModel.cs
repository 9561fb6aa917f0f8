using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.Registration;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.SegmentAttention;
using OnnxAttention.Operators.SummaryAttention;
using OnnxAttention.Operators.WindowAttention;
using OnnxAttention.Tests.HybridAttention;
using OnnxAttention.Tests.LinearAttention;
using OnnxAttention.Tests.SegmentAttention;
using OnnxAttention.Tests.SummaryAttention;
using OnnxAttention.Tests.Support;
using OnnxAttention.Tests.WindowAttention;

namespace OnnxAttention.Tests.Native;

/// <summary>
/// One model with a node for every CPU entry of <see cref="OperatorRegistry.Operators"/> (each element-type binding),
/// every optional input and output wired, and seeded inputs. Graph names are "{op}_{type}_{tensor}".
/// </summary>
public sealed class AllOperatorsModel
{
    /// <summary>
    /// A node's seeded inputs in schema order (float32 or int64; converted to the schema's types). Its outputs are
    /// the attention output (rank 3) and one present per past input, shaped like that past.
    /// </summary>
    private sealed record Sample(TypedTensor[] Inputs, Action<ModelBuilder, List<string>, List<string>> AddNode)
    {
        public int[] OutputRanks => [3, .. Inputs.Skip(3).Select(t => t.Shape.Length)];
    }

    /// <summary>query, key and value of a case, packed [batch, seq, heads * dim].</summary>
    private static TypedTensor[] Qkv(float[] q, float[] k, float[] v, int batch, int seq, int qHeads, int kvHeads, int dk, int dv) =>
    [
        TypedTensor.Of(q, batch, seq, qHeads * dk),
        TypedTensor.Of(k, batch, seq, kvHeads * dk),
        TypedTensor.Of(v, batch, seq, kvHeads * dv),
    ];

    private AllOperatorsModel(ModelProto model, Dictionary<string, TypedTensor> inputs, List<string> outputs,
        List<CustomOperator> covered, List<CustomOperator> missing)
    {
        Model = model;
        Inputs = inputs;
        Outputs = outputs;
        Covered = covered;
        Missing = missing;
    }

    public ModelProto Model { get; }

    public Dictionary<string, TypedTensor> Inputs { get; }

    public List<string> Outputs { get; }

    /// <summary>The registry entries that have a node in the model.</summary>
    public List<CustomOperator> Covered { get; }

    /// <summary>Operators of the registry that have no sample below: a test must fail until one is added.</summary>
    public List<CustomOperator> Missing { get; }

    public static string Prefix(CustomOperator op) => $"{op.Schema.Name}_{op.Schema.Inputs[0].ElementType switch
    {
        OrtElementType.Float16 => "f16",
        OrtElementType.BFloat16 => "bf16",
        _ => "f32",
    }}";

    /// <summary>
    /// The registered operators a CPU session runs: the CUDA execution provider's variants share their names and
    /// schemas, and ORT never places a node on them without that provider.
    /// </summary>
    public static IEnumerable<CustomOperator> CpuOperators => OperatorRegistry.Operators.Where(o => o.Schema.RunsOnCpu);

    /// <param name="operators">The registry entries to include (default: all).</param>
    /// <param name="declareShapes">false: inputs carry no shape, so wrong ranks reach our kernels instead of ORT's checks.</param>
    public static AllOperatorsModel Build(IEnumerable<CustomOperator>? operators = null, bool declareShapes = true)
    {
        var b = new ModelBuilder("all_onnxattention_operators");
        var inputs = new Dictionary<string, TypedTensor>();
        var outputs = new List<string>();
        var covered = new List<CustomOperator>();
        var missing = new List<CustomOperator>();
        foreach (var op in operators ?? CpuOperators)
        {
            var sample = SampleFor(op.Schema.Name);
            if (sample is null)
            {
                missing.Add(op);
                continue;
            }
            var prefix = Prefix(op);
            var inNames = new List<string>();
            for (var i = 0; i < sample.Inputs.Length; i++)
            {
                var spec = op.Schema.Inputs[i];
                var name = $"{prefix}_{spec.Name}";
                var tensor = ConvertTo(spec.ElementType, sample.Inputs[i]);
                // Symbolic dims only: ORT checks ranks and types, our kernels check the sizes (and say so).
                if (declareShapes) b.Input(name, ProtoType(spec.ElementType), tensor.Shape.Select((_, d) => (Dim)$"{name}_{d}").ToArray());
                else b.InputOfAnyShape(name, ProtoType(spec.ElementType));
                inputs[name] = tensor;
                inNames.Add(name);
            }
            var outNames = new List<string>();
            for (var i = 0; i < sample.OutputRanks.Length; i++)
            {
                var spec = op.Schema.Outputs[i];
                var name = $"{prefix}_{spec.Name}";
                b.Output(name, ProtoType(spec.ElementType), Enumerable.Range(0, sample.OutputRanks[i]).Select(d => (Dim)$"{name}_{d}").ToArray());
                outNames.Add(name);
            }
            sample.AddNode(b, inNames, outNames);
            outputs.AddRange(outNames);
            covered.Add(op);
        }
        return new AllOperatorsModel(b.Build(), inputs, outputs, covered, missing);
    }

    private static Sample? SampleFor(string opName) => opName switch
    {
        LinearAttentionOperator.OpName => Linear(),
        SummaryAttentionOperator.OpName => Summary(),
        HybridAttentionOperator.OpName => Hybrid(),
        SegmentAttentionOperator.OpName => Segment(),
        WindowAttentionOperator.OpName => Window(),
        _ => null,
    };

    private static Sample Linear()
    {
        var c = new LinearAttentionCase(2, 5, 4, 2, 8, 6);
        return new Sample(
            [
                .. Qkv(c.Query, c.Key, c.Value, c.Batch, c.Seq, c.QHeads, c.KvHeads, c.Dk, c.Dv),
                TypedTensor.Of(c.PastState, c.StateShape),
                TypedTensor.Of(c.PastNormalizer, c.NormalizerShape),
            ],
            (b, i, o) => b.LinearAttention(c.Options, i[0], i[1], i[2], i[3], i[4], o[0], o[1], o[2]));
    }

    private static Sample Summary()
    {
        // Moving summaries read and write every state input, ring buffers included.
        var c = new SummaryAttentionCase(2, 5, 4, 2, 8, 6, Summary: "moving", Window: 3, History: 4);
        var p = c.Past;
        return new Sample(
            [
                .. Qkv(c.Query, c.Key, c.Value, c.Batch, c.Seq, c.QHeads, c.KvHeads, c.Dk, c.Dv),
                TypedTensor.Of(p.KeySummary, c.KeySummaryShape),
                TypedTensor.Of(p.ValueSummary, c.ValueSummaryShape),
                TypedTensor.Of(p.Count, c.Batch),
                TypedTensor.Of(p.KeyWindow, c.KeyWindowShape),
                TypedTensor.Of(p.ValueWindow, c.ValueWindowShape),
            ],
            (b, i, o) => b.SummaryAttention(c.Options, i, o));
    }

    private static Sample Hybrid()
    {
        var c = new HybridAttentionCase(2, 5, 4, 2, 8, 6, Window: 4, History: 6);
        var p = c.Past;
        return new Sample(
            [
                .. Qkv(c.Query, c.Key, c.Value, c.Batch, c.Seq, c.QHeads, c.KvHeads, c.Dk, c.Dv),
                TypedTensor.Of(p.Key, c.CacheKeyShape),
                TypedTensor.Of(p.Value, c.CacheValueShape),
                TypedTensor.Of(p.Position, c.Batch),
                TypedTensor.Of(p.CompressedKey, c.CompressedKeyShape),
                TypedTensor.Of(p.CompressedValue, c.CompressedValueShape),
            ],
            (b, i, o) => b.HybridAttention(c.Options, i, o));
    }

    private static Sample Segment()
    {
        // A past that ends mid-segment, so both the memory and the partial segment are read.
        var c = new SegmentAttentionCase(2, 5, 4, 2, 8, 6, SegmentLength: 3, History: 4);
        var p = c.Past;
        return new Sample(
            [
                .. Qkv(c.Query, c.Key, c.Value, c.Batch, c.Seq, c.QHeads, c.KvHeads, c.Dk, c.Dv),
                TypedTensor.Of(p.MemoryKey, c.KeyStateShape),
                TypedTensor.Of(p.MemoryValue, c.ValueStateShape),
                TypedTensor.Of(p.SegmentKey, c.KeyStateShape),
                TypedTensor.Of(p.SegmentValue, c.ValueStateShape),
                TypedTensor.Of(p.Position, c.Batch),
            ],
            (b, i, o) => b.SegmentAttention(c.Options, i, o));
    }

    private static Sample Window()
    {
        var c = new WindowAttentionCase(2, 5, 4, 2, 8, 6, Window: 3, Sinks: 2, History: 4);
        var p = c.Past;
        return new Sample(
            [
                .. Qkv(c.Query, c.Key, c.Value, c.Batch, c.Seq, c.QHeads, c.KvHeads, c.Dk, c.Dv),
                TypedTensor.Of(p.Key, c.CacheKeyShape),
                TypedTensor.Of(p.Value, c.CacheValueShape),
                TypedTensor.Of(p.Position, c.Batch),
            ],
            (b, i, o) => b.WindowAttention(c.Options, i, o));
    }

    private static TypedTensor ConvertTo(OrtElementType type, TypedTensor t) => (type, t.Data) switch
    {
        (OrtElementType.Float, float[]) or (OrtElementType.Int64, long[]) => t,
        (OrtElementType.Float16, float[] f) => TypedTensor.Of(f.Select(v => (Float16)v).ToArray(), t.Shape),
        (OrtElementType.BFloat16, float[] f) => TypedTensor.Of(ActivationTensors.ToBFloat16(f), t.Shape),
        _ => throw new ArgumentException($"no conversion of {t.Data.GetType()} to {type}"),
    };

    private static TensorProto.Types.DataType ProtoType(OrtElementType type) => (TensorProto.Types.DataType)(int)type;
}
