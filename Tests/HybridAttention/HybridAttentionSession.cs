using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;
using OnnxAttention.KernelForms;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.HybridAttention;

/// <summary>HybridAttention's state between calls, as float32/int64 arrays in the operator's layouts.</summary>
public sealed record HybridState(float[] Key, float[] Value, long[] Position, float[] CompressedKey, float[] CompressedValue);

/// <summary>A one-node model around com.onnxattention.HybridAttention, run through a real InferenceSession.</summary>
public sealed class HybridAttentionSession : CacheOpSession<HybridState>
{
    public static readonly string[] PastNames = [.. HybridAttentionContract.Contract.States.Select(s => s.Past)];
    public static readonly string[] PresentNames = [.. HybridAttentionContract.Contract.States.Select(s => s.Present)];

    /// <param name="pastInputs">How many of the five past-state inputs the graph wires (0 to 5).</param>
    /// <param name="presentOutputs">How many of the five present-state outputs the graph wires (0 to 5).</param>
    /// <param name="declareShapes">false: graph inputs carry no shape, so our kernel (not ORT) sees wrong ranks.</param>
    /// <param name="activation">Float, Float16 or Bfloat16: query/key/value/output type. Run takes and returns float32 arrays either way.</param>
    /// <param name="maps">compress=hedgehog's feature maps and mix, written as initializers feeding the node's further inputs.</param>
    /// <param name="session">Where the model runs; null: our CPU operators.</param>
    public HybridAttentionSession(HybridAttentionNode.Options options, int pastInputs = 5, int presentOutputs = 5,
        bool declareShapes = true, int intraOpThreads = 1, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float, KernelFormSwitch? forms = null,
        HybridAttentionReference.HedgehogMaps? maps = null, int? mapHeadDim = null, Func<ModelProto, OwnedSession>? session = null)
        : base(BuildModel(options, pastInputs, presentOutputs, declareShapes, activation, maps, mapHeadDim), PastNames, PresentNames,
            pastInputs, presentOutputs, intraOpThreads, activation, forms, session)
    {
    }

    /// <summary>The further inputs as (name, values, shape); <paramref name="headDim"/> is the one the weights claim.</summary>
    public static IEnumerable<(string Name, float[] Values, long[] Shape)> MapTensors(HybridAttentionNode.Options o, HybridAttentionReference.HedgehogMaps maps, int headDim)
    {
        int hq = o.QueryHeads, hkv = o.KvHeads == 0 ? o.QueryHeads : o.KvHeads, m = maps.QueryBias.Length / hq;
        yield return ("feature_query_weight", maps.QueryWeight, [hq, headDim, m]);
        yield return ("feature_query_bias", maps.QueryBias, [hq, m]);
        yield return ("feature_key_weight", maps.KeyWeight, [hkv, headDim, m]);
        yield return ("feature_key_bias", maps.KeyBias, [hkv, m]);
        yield return ("mix", maps.Mix, [hq]);
    }

    public static ModelProto BuildModel(HybridAttentionNode.Options options, int pastInputs = 5, int presentOutputs = 5,
        bool declareShapes = true, TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float,
        HybridAttentionReference.HedgehogMaps? maps = null, int? mapHeadDim = null)
    {
        Dim[][] shapes = [["batch", "kv_heads", "window", "dk"], ["batch", "kv_heads", "window", "dv"], ["batch"],
            ["batch", "kv_heads", "dk"], ["batch", "kv_heads", "rows", "dv"]];
        return BuildModel("hybrid_attention_test", PastNames, PresentNames, HybridAttentionContract.Contract.States.ToList().FindIndex(s => s.IsPosition), shapes, pastInputs, presentOutputs, declareShapes,
            activation, (b, inputs, outputs) =>
            {
                if (maps is not null)
                {
                    while (inputs.Count < 3 + PastNames.Length) inputs.Add("");
                    var headDim = mapHeadDim ?? maps.QueryWeight.Length / maps.QueryBias.Length;
                    foreach (var (name, values, shape) in MapTensors(options, maps, headDim))
                    {
                        b.Initializer(Tensors.Float(name, values, shape));
                        inputs.Add(name);
                    }
                }
                b.HybridAttention(options, inputs, outputs);
            });
    }

    public Outputs Run(HybridAttentionCase c, int seq, float[] q, float[] k, float[] v, HybridState? past,
        long[]? queryShape = null, long[]? keyShape = null, long[]? valueShape = null, long[]? pastKeyShape = null,
        long[]? positionShape = null, long[]? compressedKeyShape = null, long[]? compressedValueShape = null) =>
        Run(c, seq, q, k, v, past, queryShape, keyShape, valueShape, p =>
        [
            TypedTensor.Of(p.Key, pastKeyShape ?? c.CacheKeyShape),
            TypedTensor.Of(p.Value, c.CacheValueShape),
            TypedTensor.Of(p.Position, positionShape ?? [c.Batch]),
            TypedTensor.Of(p.CompressedKey, compressedKeyShape ?? c.CompressedKeyShape),
            TypedTensor.Of(p.CompressedValue, compressedValueShape ?? c.CompressedValueShape),
        ]);

    protected override HybridState ReadPresent(IReadOnlyList<TypedTensor> present) =>
        new(present[0].Floats, present[1].Floats, present[2].Longs, present[3].Floats, present[4].Floats);
}
