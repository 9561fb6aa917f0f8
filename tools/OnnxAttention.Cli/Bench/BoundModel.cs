using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;
using OnnxAttention.KernelForms;

namespace OnnxAttention.Cli.Bench;

/// <summary>
/// A model with every input and output preallocated and bound once (IO binding), so a timed run measures the
/// operators, not tensor allocation. Float inputs are filled with small seeded values. On CUDA
/// (<see cref="Target"/>) ORT copies each host input to the device once, when it is bound, and outputs are device
/// tensors, so a run moves nothing between host and device.
/// </summary>
public sealed class BoundModel : IDisposable
{
    private readonly OwnedSession _session;
    private readonly OrtIoBinding _binding;
    private readonly RunOptions _runOptions = new();
    private readonly List<OrtValue> _values = [];
    private readonly OrtMemoryInfo? _deviceMemory;
    private readonly OrtAllocator? _deviceAllocator;

    /// <summary>Where every bench session runs (bench-ops --ep); set once, before any model is bound.</summary>
    public static ExecutionTarget Target { get; set; } = ExecutionTarget.Cpu;

    /// <summary>
    /// The activation type of every model (bench-ops --type): float16 or bfloat16 converts each by
    /// <see cref="HalfActivations"/>; set once. A model may name its own (<c>activations</c>).
    /// </summary>
    public static TensorProto.Types.DataType Activations { get; set; } = TensorProto.Types.DataType.Float;

    public BoundModel(ModelProto model, IReadOnlyDictionary<string, (Array Data, long[] Shape)> inputs,
        IReadOnlyDictionary<string, (Array Data, long[] Shape)> outputs, int threads, IReadOnlyDictionary<string, string>? shareOutputWithInput = null,
        KernelFormSwitch? forms = null, TensorProto.Types.DataType? activations = null)
    {
        if (forms is not null && Target.IsCuda) throw new ArgumentException("kernel forms are CPU kernels; they are not timed on CUDA");
        var type = activations ?? Activations;
        if (type != TensorProto.Types.DataType.Float) (model, inputs, outputs) = HalfActivations.Convert(model, inputs, outputs, type);
        _session = forms?.CreateSession(model, threads) ?? SessionFactory.Create(model, threads, Target);
        _binding = _session.Session.CreateIoBinding();
        if (Target.IsCuda)
        {
            _deviceMemory = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, Target.DeviceId, OrtMemType.Default);
            _deviceAllocator = new OrtAllocator(_session.Session, _deviceMemory);
        }
        var shared = shareOutputWithInput?.Values.ToHashSet() ?? [];
        var byName = new Dictionary<string, OrtValue>();
        foreach (var (name, (data, shape)) in inputs)
        {
            // On CUDA a buffer shared by an input and an output must be device memory; its contents stay undefined
            // (the timing of these kernels does not depend on the values).
            var v = _deviceAllocator is not null && shared.Contains(name) ? CreateOnDevice(data, shape) : Create(data, shape);
            byName[name] = v;
            _binding.BindInput(name, v);
        }
        foreach (var (name, (data, shape)) in outputs)
        {
            // An output may reuse an input's buffer (GroupQueryAttention's shared past/present KV cache).
            var v = shareOutputWithInput?.TryGetValue(name, out var input) == true ? byName[input]
                : _deviceAllocator is not null ? CreateOnDevice(data, shape) : Create(data, shape);
            _binding.BindOutput(name, v);
        }
    }

    private OrtValue CreateOnDevice(Array data, long[] shape)
    {
        var type = data switch
        {
            float[] => TensorElementType.Float,
            Float16[] => TensorElementType.Float16,
            BFloat16[] => TensorElementType.BFloat16,
            long[] => TensorElementType.Int64,
            int[] => TensorElementType.Int32,
            _ => throw new ArgumentException($"unsupported buffer type {data.GetType()}"),
        };
        var v = OrtValue.CreateAllocatedTensorValue(_deviceAllocator!, type, shape);
        _values.Add(v);
        return v;
    }

    public void Run() => _session.Session.RunWithBinding(_runOptions, _binding);

    private OrtValue Create(Array data, long[] shape)
    {
        var v = data switch
        {
            float[] f => OrtValue.CreateTensorValueFromMemory(f, shape),
            Float16[] h => OrtValue.CreateTensorValueFromMemory(h, shape),
            BFloat16[] h => OrtValue.CreateTensorValueFromMemory(h, shape),
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
        _deviceAllocator?.Dispose();
        _deviceMemory?.Dispose();
        _session.Dispose();
    }
}
