using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;
using OnnxAttention.KernelForms;

namespace OnnxAttention.Cli.Bench;

/// <summary>
/// A model with every input and output preallocated and bound once (IO binding), so a timed run measures the
/// operators, not tensor allocation. Float inputs are filled with small seeded values.
/// </summary>
public sealed class BoundModel : IDisposable
{
    private readonly OwnedSession _session;
    private readonly OrtIoBinding _binding;
    private readonly RunOptions _runOptions = new();
    private readonly List<OrtValue> _values = [];

    public BoundModel(ModelProto model, IReadOnlyDictionary<string, (Array Data, long[] Shape)> inputs,
        IReadOnlyDictionary<string, (Array Data, long[] Shape)> outputs, int threads, IReadOnlyDictionary<string, string>? shareOutputWithInput = null,
        KernelFormSwitch? forms = null)
    {
        _session = forms?.CreateSession(model, threads) ?? SessionFactory.Create(model, threads);
        _binding = _session.Session.CreateIoBinding();
        var byName = new Dictionary<string, OrtValue>();
        foreach (var (name, (data, shape)) in inputs)
        {
            var v = Create(data, shape);
            byName[name] = v;
            _binding.BindInput(name, v);
        }
        foreach (var (name, (data, shape)) in outputs)
        {
            // An output may reuse an input's buffer (GroupQueryAttention's shared past/present KV cache).
            var v = shareOutputWithInput?.TryGetValue(name, out var input) == true ? byName[input] : Create(data, shape);
            _binding.BindOutput(name, v);
        }
    }

    public void Run() => _session.Session.RunWithBinding(_runOptions, _binding);

    private OrtValue Create(Array data, long[] shape)
    {
        var v = data switch
        {
            float[] f => OrtValue.CreateTensorValueFromMemory(f, shape),
            long[] l => OrtValue.CreateTensorValueFromMemory(l, shape),
            int[] i => OrtValue.CreateTensorValueFromMemory(i, shape),
            _ => throw new ArgumentException($"unsupported buffer type {data.GetType()}"),
        };
        _values.Add(v);
        return v;
    }

    public static float[] Filled(long count, int seed, float scale = 0.5f)
    {
        var rng = new Random(seed);
        var a = new float[count];
        // Past 1M values the seeded block repeats: a 16k-token KV cache is up to 4 GB, too slow to draw value by value.
        var drawn = (int)Math.Min(count, 1 << 20);
        for (var i = 0; i < drawn; i++) a[i] = scale * (2f * (float)rng.NextDouble() - 1f);
        for (long i = drawn; i < count; i += drawn) a.AsSpan(0, (int)Math.Min(drawn, count - i)).CopyTo(a.AsSpan((int)i));
        return a;
    }

    public void Dispose()
    {
        _binding.Dispose();
        _runOptions.Dispose();
        foreach (var v in _values) v.Dispose();
        _session.Dispose();
    }
}
