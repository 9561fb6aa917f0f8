using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Tests.Support;

/// <summary>A float tensor as tests pass it around: data and shape.</summary>
public sealed record FloatTensor(float[] Data, long[] Shape)
{
    public static FloatTensor Of(float[] data, params long[] shape) => new(data, shape);
}

/// <summary>Runs any model with our operators registered, on named float inputs.</summary>
public sealed class ModelRunner(ModelProto model, int intraOpThreads = 1) : IDisposable
{
    private readonly OwnedSession _session = SessionFactory.Create(model, intraOpThreads);

    public InferenceSession Session => _session.Session;

    public Dictionary<string, FloatTensor> Run(IReadOnlyDictionary<string, FloatTensor> inputs, params string[] outputs)
    {
        using var values = new DisposableList<OrtValue>();
        foreach (var (_, t) in inputs)
        {
            values.Add(OrtValue.CreateTensorValueFromMemory(t.Data, t.Shape));
        }
        using var runOptions = new RunOptions();
        using var results = Session.Run(runOptions, inputs.Keys.ToList(), values, outputs);
        var map = new Dictionary<string, FloatTensor>();
        for (var i = 0; i < outputs.Length; i++)
        {
            map[outputs[i]] = new FloatTensor(results[i].GetTensorDataAsSpan<float>().ToArray(), results[i].GetTensorTypeAndShape().Shape);
        }
        return map;
    }

    public void Dispose() => _session.Dispose();
}
