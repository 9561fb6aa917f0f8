using Microsoft.ML.OnnxRuntime;

namespace OnnxAttention.Host.Generation.Backends;

/// <summary>
/// <see cref="ISessionBackend"/> on the managed binding (Microsoft.ML.OnnxRuntime): host tensors and state buffers
/// are managed arrays under OrtValues (state memory is CPU memory), bindings are <see cref="OrtIoBinding"/>s.
/// </summary>
public sealed class ManagedBackend : ISessionBackend
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();

    public ManagedBackend(InferenceSession session) => _session = session;

    public string StateMemory => "Cpu";

    public IHostTensor<T> Host<T>(long[] shape) where T : unmanaged => new ManagedTensor<T>(new T[Elements(shape)], shape);

    public IBackendTensor AllocateState(long[] shape) => new ManagedTensor<float>(new float[Elements(shape)], shape);

    public IBackendTensor Row(IBackendTensor state, long row, long[] rowShape)
    {
        var data = ((ManagedTensor<float>)state).Data;
        var size = (int)Elements(rowShape);
        var view = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, data.AsMemory(checked((int)(row * size)), size), rowShape);
        return new ManagedTensor<float>(view, data);
    }

    public IBackendBinding CreateBinding() => new Binding(_session, _runOptions);

    public void Dispose() => _runOptions.Dispose();

    private static long Elements(long[] shape) => shape.Aggregate(1L, (a, d) => a * d);

    private static OrtValue ValueOf(IBackendTensor tensor) => tensor is IManagedValue managed
        ? managed.Value
        : throw new ArgumentException($"a {tensor.GetType().Name} is not a tensor of the managed binding");

    private interface IManagedValue
    {
        OrtValue Value { get; }
    }

    /// <summary>A managed array and the OrtValue over it (or over part of it, for a row view).</summary>
    private sealed class ManagedTensor<T> : IHostTensor<T>, IManagedValue where T : unmanaged
    {
        public ManagedTensor(T[] data, long[] shape) : this(OrtValue.CreateTensorValueFromMemory(data, shape), data)
        {
        }

        public ManagedTensor(OrtValue value, T[] data)
        {
            Value = value;
            Data = data;
        }

        public OrtValue Value { get; }

        public T[] Data { get; }

        public Span<T> Span => Data;

        public void Dispose() => Value.Dispose();
    }

    /// <summary>An OrtValue a run gave back.</summary>
    private sealed class ManagedValue(OrtValue value) : IBackendTensor, IManagedValue
    {
        public OrtValue Value { get; } = value;

        public void Dispose() => Value.Dispose();
    }

    private sealed class Binding(InferenceSession session, RunOptions runOptions) : IBackendBinding
    {
        private readonly OrtIoBinding _binding = session.CreateIoBinding();

        public void Clear()
        {
            _binding.ClearBoundInputs();
            _binding.ClearBoundOutputs();
        }

        public void Input(string name, IBackendTensor value) => _binding.BindInput(name, ValueOf(value));

        public void Output(string name, IBackendTensor value) => _binding.BindOutput(name, ValueOf(value));

        public void OutputInStateMemory(string name) => _binding.BindOutputToDevice(name, OrtMemoryInfo.DefaultInstance);

        public void Run() => session.RunWithBinding(runOptions, _binding);

        public IBackendTensor[] TakeOutputs()
        {
            // Each value is disposed by whoever takes it; the collection itself holds nothing else.
            var outputs = _binding.GetOutputValues();
            return outputs.Select(v => (IBackendTensor)new ManagedValue(v)).ToArray();
        }

        public void Dispose() => _binding.Dispose();
    }
}
