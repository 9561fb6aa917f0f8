using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Tests.Support;

/// <summary>A one-node model around com.onnxattention.LinearAttention, run through a real InferenceSession.</summary>
public sealed class LinearAttentionSession : IDisposable
{
    public sealed record Outputs(float[] Y, float[] State, float[] Normalizer, long[] YShape, long[] StateShape, long[] NormalizerShape);

    private readonly OwnedSession _session;
    private readonly bool _withPast;

    /// <param name="declareShapes">false: graph inputs carry no shape, so our kernel (not ORT) sees wrong ranks.</param>
    public LinearAttentionSession(LinearAttentionNode.Options options, bool withPast, int intraOpThreads = 1, bool declareShapes = true)
    {
        _withPast = withPast;
        _session = SessionFactory.Create(BuildModel(options, withPast, declareShapes), intraOpThreads);
    }

    public InferenceSession Session => _session.Session;

    public static ModelProto BuildModel(LinearAttentionNode.Options options, bool withPast, bool declareShapes = true,
        TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float)
    {
        const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;
        var b = new ModelBuilder("linear_attention_test");
        void Declare(string name, TensorProto.Types.DataType type, params Dim[] shape)
        {
            if (declareShapes) b.Input(name, type, shape);
            else b.InputOfAnyShape(name, type);
        }
        Declare("query", activation, "batch", "seq", "q_hidden");
        Declare("key", activation, "batch", "seq", "k_hidden");
        Declare("value", activation, "batch", "seq", "v_hidden");
        if (withPast)
        {
            Declare("past_state", F, "batch", "kv_heads", "dk", "dv");
            Declare("past_normalizer", F, "batch", "kv_heads", "dk");
        }
        return b.LinearAttention(options, "query", "key", "value",
                withPast ? "past_state" : "", withPast ? "past_normalizer" : "",
                "output", "present_state", "present_normalizer")
            .Output("output", activation, "batch", "seq", "o_hidden")
            .Output("present_state", F, "batch", "kv_heads", "dk", "dv")
            .Output("present_normalizer", F, "batch", "kv_heads", "dk")
            .Build();
    }

    public Outputs Run(int batch, int seq, float[] q, float[] k, float[] v, float[]? pastState = null, float[]? pastNorm = null,
        long[]? pastStateShape = null, long[]? pastNormShape = null, long[]? queryShape = null,
        long[]? keyShape = null, long[]? valueShape = null)
    {
        var names = new List<string> { "query", "key", "value" };
        using var values = new DisposableList<OrtValue>
        {
            OrtValue.CreateTensorValueFromMemory(q, queryShape ?? [batch, seq, q.Length / Math.Max(1, batch * seq)]),
            OrtValue.CreateTensorValueFromMemory(k, keyShape ?? [batch, seq, k.Length / Math.Max(1, batch * seq)]),
            OrtValue.CreateTensorValueFromMemory(v, valueShape ?? [batch, seq, v.Length / Math.Max(1, batch * seq)]),
        };
        if (_withPast)
        {
            names.Add("past_state");
            names.Add("past_normalizer");
            values.Add(OrtValue.CreateTensorValueFromMemory(pastState ?? throw new ArgumentNullException(nameof(pastState)), pastStateShape!));
            values.Add(OrtValue.CreateTensorValueFromMemory(pastNorm ?? throw new ArgumentNullException(nameof(pastNorm)), pastNormShape!));
        }
        using var runOptions = new RunOptions();
        using var results = _session.Session.Run(runOptions, names, values, ["output", "present_state", "present_normalizer"]);
        return new Outputs(
            results[0].GetTensorDataAsSpan<float>().ToArray(),
            results[1].GetTensorDataAsSpan<float>().ToArray(),
            results[2].GetTensorDataAsSpan<float>().ToArray(),
            results[0].GetTensorTypeAndShape().Shape,
            results[1].GetTensorTypeAndShape().Shape,
            results[2].GetTensorTypeAndShape().Shape);
    }

    public void Dispose() => _session.Dispose();
}

/// <summary>A list that disposes its items.</summary>
public sealed class DisposableList<T> : List<T>, IDisposable where T : IDisposable
{
    public void Dispose()
    {
        foreach (var item in this) item.Dispose();
    }
}
