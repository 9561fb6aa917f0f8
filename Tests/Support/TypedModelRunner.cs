using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;
using OnnxAttention.KernelForms;

namespace OnnxAttention.Tests.Support;

/// <summary>
/// A tensor of float32, float16 (as <see cref="Float16"/>), bfloat16 (as <see cref="BFloat16"/>) or int64 elements,
/// as tests pass it around.
/// </summary>
public sealed record TypedTensor(Array Data, long[] Shape)
{
    public float[] Floats => (float[])Data;

    public long[] Longs => (long[])Data;

    public static TypedTensor Of(float[] data, params long[] shape) => new(data, shape);

    public static TypedTensor Of(long[] data, params long[] shape) => new(data, shape);

    public static TypedTensor Of(Float16[] data, params long[] shape) => new(data, shape);

    public static TypedTensor Of(BFloat16[] data, params long[] shape) => new(data, shape);

    public static TypedTensor Of(sbyte[] data, params long[] shape) => new(data, shape);
}

/// <summary>Runs any model with our operators registered, on named inputs of mixed element types.</summary>
public sealed class TypedModelRunner(OwnedSession session) : IDisposable
{
    private readonly OwnedSession _session = session;

    /// <summary>A session of <paramref name="model"/>, with <paramref name="forms"/>' kernel forms when given.</summary>
    public TypedModelRunner(ModelProto model, int intraOpThreads = 1, KernelFormSwitch? forms = null)
        : this(forms?.CreateSession(model, intraOpThreads) ?? SessionFactory.Create(model, intraOpThreads))
    {
    }

    public InferenceSession Session => _session.Session;

    public Dictionary<string, TypedTensor> Run(IEnumerable<KeyValuePair<string, TypedTensor>> inputs, params string[] outputs)
    {
        var names = new List<string>();
        using var values = new DisposableList<OrtValue>();
        foreach (var (name, t) in inputs)
        {
            names.Add(name);
            values.Add(t.Data switch
            {
                float[] f => OrtValue.CreateTensorValueFromMemory(f, t.Shape),
                long[] l => OrtValue.CreateTensorValueFromMemory(l, t.Shape),
                Float16[] h => OrtValue.CreateTensorValueFromMemory(h, t.Shape),
                BFloat16[] bf => OrtValue.CreateTensorValueFromMemory(bf, t.Shape),
                sbyte[] b => OrtValue.CreateTensorValueFromMemory(b, t.Shape),
                _ => throw new ArgumentException($"input '{name}': unsupported element type {t.Data.GetType()}"),
            });
        }
        using var runOptions = new RunOptions();
        using var results = Session.Run(runOptions, names, values, outputs);
        var map = new Dictionary<string, TypedTensor>();
        for (var i = 0; i < outputs.Length; i++)
        {
            var info = results[i].GetTensorTypeAndShape();
            Array data = info.ElementDataType switch
            {
                TensorElementType.Float => results[i].GetTensorDataAsSpan<float>().ToArray(),
                TensorElementType.Int64 => results[i].GetTensorDataAsSpan<long>().ToArray(),
                TensorElementType.Float16 => results[i].GetTensorDataAsSpan<Float16>().ToArray(),
                TensorElementType.BFloat16 => results[i].GetTensorDataAsSpan<BFloat16>().ToArray(),
                TensorElementType.Int8 => results[i].GetTensorDataAsSpan<sbyte>().ToArray(),
                var other => throw new InvalidOperationException($"output '{outputs[i]}': unsupported element type {other}"),
            };
            map[outputs[i]] = new TypedTensor(data, info.Shape);
        }
        return map;
    }

    public void Dispose() => _session.Dispose();
}
