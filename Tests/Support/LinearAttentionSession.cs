using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;
using OnnxAttention.KernelForms;
using OnnxAttention.Operators.LinearAttention;

namespace OnnxAttention.Tests.Support;

/// <summary>A one-node model around com.onnxattention.LinearAttention, run through a real InferenceSession.</summary>
public sealed class LinearAttentionSession : IDisposable
{
    public sealed record Outputs(float[] Y, float[] State, float[] Normalizer, long[] YShape, long[] StateShape, long[] NormalizerShape);

    private readonly OwnedSession _session;
    private readonly bool _withPast;
    private readonly bool _withDecay;
    private readonly bool _withBeta;

    /// <param name="declareShapes">false: graph inputs carry no shape, so our kernel (not ORT) sees wrong ranks.</param>
    /// <param name="withDecay">wire the decay (log-space gate) input; null: when the update rule uses it.</param>
    /// <param name="withBeta">wire the beta input; null: when the update rule uses it.</param>
    public LinearAttentionSession(LinearAttentionNode.Options options, bool withPast, int intraOpThreads = 1, bool declareShapes = true,
        bool? withDecay = null, bool? withBeta = null, KernelFormSwitch? forms = null)
    {
        _withPast = withPast;
        _withDecay = withDecay ?? UsesDecay(options);
        _withBeta = withBeta ?? UsesBeta(options);
        var model = BuildModel(options, withPast, declareShapes, withDecay: _withDecay, withBeta: _withBeta);
        _session = forms?.CreateSession(model, intraOpThreads) ?? SessionFactory.Create(model, intraOpThreads);
    }

    public InferenceSession Session => _session.Session;

    public static bool UsesDecay(LinearAttentionNode.Options o) =>
        UpdateRules.ByName.TryGetValue(o.UpdateRule, out var rule) && UpdateRules.IsGated(rule);

    public static bool UsesBeta(LinearAttentionNode.Options o) =>
        UpdateRules.ByName.TryGetValue(o.UpdateRule, out var rule) && UpdateRules.IsDelta(rule);

    public static ModelProto BuildModel(LinearAttentionNode.Options options, bool withPast, bool declareShapes = true,
        TensorProto.Types.DataType activation = TensorProto.Types.DataType.Float, bool? withDecay = null, bool? withBeta = null)
    {
        const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;
        var decay = withDecay ?? UsesDecay(options);
        var beta = withBeta ?? UsesBeta(options);
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
        if (decay)
        {
            Declare("decay", activation, "batch", "seq", "g_hidden");
        }
        if (beta)
        {
            Declare("beta", activation, "batch", "seq", "beta_heads");
        }
        return b.LinearAttention(options, "query", "key", "value",
                withPast ? "past_state" : "", withPast ? "past_normalizer" : "",
                "output", "present_state", "present_normalizer", decay: decay ? "decay" : "", beta: beta ? "beta" : "")
            .Output("output", activation, "batch", "seq", "o_hidden")
            .Output("present_state", F, "batch", "kv_heads", "dk", "dv")
            .Output("present_normalizer", F, "batch", "kv_heads", "dk")
            .Build();
    }

    public Outputs Run(int batch, int seq, float[] q, float[] k, float[] v, float[]? pastState = null, float[]? pastNorm = null,
        long[]? pastStateShape = null, long[]? pastNormShape = null, long[]? queryShape = null,
        long[]? keyShape = null, long[]? valueShape = null,
        float[]? decay = null, long[]? decayShape = null, float[]? beta = null, long[]? betaShape = null)
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
        if (_withDecay)
        {
            names.Add("decay");
            var g = decay ?? throw new ArgumentNullException(nameof(decay));
            values.Add(OrtValue.CreateTensorValueFromMemory(g, decayShape ?? [batch, seq, g.Length / Math.Max(1, batch * seq)]));
        }
        if (_withBeta)
        {
            names.Add("beta");
            var w = beta ?? throw new ArgumentNullException(nameof(beta));
            values.Add(OrtValue.CreateTensorValueFromMemory(w, betaShape ?? [batch, seq, w.Length / Math.Max(1, batch * seq)]));
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
