using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Host.Generation.Backends;

/// <summary>
/// <see cref="ISessionBackend"/> on the managed binding (Microsoft.ML.OnnxRuntime). Host tensors are managed arrays
/// under OrtValues, bindings are <see cref="OrtIoBinding"/>s. On the CPU provider state buffers are managed arrays
/// too; on CUDA they are OrtValues the session's CUDA allocator made (device memory), and rows are views at a byte
/// offset of their device pointer.
/// </summary>
public sealed class ManagedBackend : ISessionBackend
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly OrtMemoryInfo? _deviceMemory;   // null on the CPU provider
    private readonly OrtAllocator? _deviceAllocator;

    public ManagedBackend(InferenceSession session) : this(session, ExecutionTarget.Cpu)
    {
    }

    public ManagedBackend(InferenceSession session, ExecutionTarget target)
    {
        _session = session;
        if (target.IsCuda)
        {
            _deviceMemory = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, target.DeviceId, OrtMemType.Default);
            _deviceAllocator = new OrtAllocator(session, _deviceMemory);
        }
    }

    public string StateMemory => _deviceMemory is null ? "Cpu" : "Cuda";

    public IHostTensor<T> Host<T>(long[] shape) where T : unmanaged => new ManagedTensor<T>(new T[Elements(shape)], shape);

    public IBackendTensor HostZeros(TensorProto.Types.DataType type, long[] shape) => type switch
    {
        TensorProto.Types.DataType.Float => Host<float>(shape),
        TensorProto.Types.DataType.Float16 => Host<Float16>(shape),
        TensorProto.Types.DataType.Bfloat16 => Host<BFloat16>(shape),
        TensorProto.Types.DataType.Int8 => Host<sbyte>(shape),
        _ => throw new ArgumentException($"state of element type {type} is not carried"),
    };

    public IHostTensor<T> HostOver<T>(T[] data, long[] shape) where T : unmanaged =>
        new ManagedTensor<T>(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, data.AsMemory(0, checked((int)Elements(shape))), shape), data);

    public IBackendTensor AllocateState(TensorProto.Types.DataType type, long[] shape) => _deviceAllocator is null
        ? HostZeros(type, shape)
        : new DeviceTensor(OrtValue.CreateAllocatedTensorValue(_deviceAllocator, ElementType(type), shape));

    public IBackendTensor Row(IBackendTensor state, long row, long[] rowShape)
    {
        var size = Elements(rowShape);
        return state switch
        {
            DeviceTensor device => device.Row(_deviceMemory!, row, size, rowShape),
            ManagedTensor<float> f => f.Row(row, size, rowShape),
            ManagedTensor<Float16> h => h.Row(row, size, rowShape),
            ManagedTensor<BFloat16> bf => bf.Row(row, size, rowShape),
            ManagedTensor<sbyte> b => b.Row(row, size, rowShape),
            _ => throw new ArgumentException($"a {state.GetType().Name} is not a state buffer of this backend"),
        };
    }

    private static TensorElementType ElementType(TensorProto.Types.DataType type) => type switch
    {
        TensorProto.Types.DataType.Float => TensorElementType.Float,
        TensorProto.Types.DataType.Float16 => TensorElementType.Float16,
        TensorProto.Types.DataType.Bfloat16 => TensorElementType.BFloat16,
        TensorProto.Types.DataType.Int8 => TensorElementType.Int8,
        _ => throw new ArgumentException($"state of element type {type} is not carried"),
    };

    public IBackendBinding CreateBinding() => new Binding(_session, _runOptions, _deviceMemory);

    public float[] ReadFloats(IBackendTensor tensor)
    {
        var value = ValueOf(tensor);
        return value.GetTensorTypeAndShape().ElementDataType switch
        {
            TensorElementType.Float16 => Widen(value.GetTensorDataAsSpan<Float16>(), x => x.ToFloat()),
            TensorElementType.BFloat16 => Widen(value.GetTensorDataAsSpan<BFloat16>(), x => x.ToFloat()),
            TensorElementType.Float => value.GetTensorDataAsSpan<float>().ToArray(),
            var other => throw new InvalidOperationException($"an output of element type {other} is not read as float32"),
        };
    }

    private static float[] Widen<T>(ReadOnlySpan<T> data, Func<T, float> widen)
    {
        var result = new float[data.Length];
        for (var i = 0; i < data.Length; i++) result[i] = widen(data[i]);
        return result;
    }

    public void Dispose()
    {
        _runOptions.Dispose();
        _deviceAllocator?.Dispose();
        _deviceMemory?.Dispose();
    }

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

        /// <summary>Row <paramref name="row"/> of <paramref name="size"/> elements, a view over the same array.</summary>
        public ManagedTensor<T> Row(long row, long size, long[] rowShape) =>
            new(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, Data.AsMemory(checked((int)(row * size)), (int)size), rowShape), Data);

        public void Dispose() => Value.Dispose();
    }

    /// <summary>A float32 tensor in device memory: a buffer the allocator made, or a row view of one.</summary>
    private sealed unsafe class DeviceTensor(OrtValue value) : IManagedValue, IBackendTensor
    {
        public OrtValue Value { get; } = value;

        /// <summary>
        /// The device address: the binding offers it only as a span over GetTensorMutableData's pointer, which is never
        /// read, only its address taken.
        /// </summary>
        public nint Pointer => (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(Value.GetTensorMutableRawData()));

        public DeviceTensor Row(OrtMemoryInfo memory, long row, long size, long[] rowShape)
        {
            var type = Value.GetTensorTypeAndShape().ElementDataType;
            var bytes = size * type switch { TensorElementType.Float => sizeof(float), TensorElementType.Int8 => 1, _ => 2 };
            return new DeviceTensor(OrtValue.CreateTensorValueWithData(memory, type, rowShape, Pointer + checked((nint)(row * bytes)), bytes));
        }

        public void Dispose() => Value.Dispose();
    }

    /// <summary>An OrtValue a run gave back.</summary>
    private sealed class ManagedValue(OrtValue value) : IBackendTensor, IManagedValue
    {
        public OrtValue Value { get; } = value;

        public void Dispose() => Value.Dispose();
    }

    private sealed class Binding(InferenceSession session, RunOptions runOptions, OrtMemoryInfo? deviceMemory) : IBackendBinding
    {
        private readonly OrtIoBinding _binding = session.CreateIoBinding();

        // On a device, ORT copies a host input to the device when it is bound, not when it runs: the host tensors
        // (ids, positions) are bound again before each run so a reused binding reads their current values.
        private readonly List<(string Name, OrtValue Value)> _hostInputs = [];

        public void Clear()
        {
            _binding.ClearBoundInputs();
            _binding.ClearBoundOutputs();
            _hostInputs.Clear();
        }

        public void Input(string name, IBackendTensor value)
        {
            _binding.BindInput(name, ValueOf(value));
            if (deviceMemory is null) return;
            // An input bound again (a mask one column longer each step) replaces its earlier host tensor.
            _hostInputs.RemoveAll(x => x.Name == name);
            if (value is not DeviceTensor) _hostInputs.Add((name, ValueOf(value)));
        }

        public void Output(string name, IBackendTensor value) => _binding.BindOutput(name, ValueOf(value));

        public void OutputInStateMemory(string name) => _binding.BindOutputToDevice(name, deviceMemory ?? OrtMemoryInfo.DefaultInstance);

        public void OutputInHostMemory(string name) => _binding.BindOutputToDevice(name, OrtMemoryInfo.DefaultInstance);

        public void Run()
        {
            foreach (var (name, value) in _hostInputs) _binding.BindInput(name, value);
            session.RunWithBinding(runOptions, _binding);
        }

        public IBackendTensor[] TakeOutputs()
        {
            // Each value is disposed by whoever takes it; the collection itself holds nothing else.
            var outputs = _binding.GetOutputValues();
            return outputs.Select(v => (IBackendTensor)new ManagedValue(v)).ToArray();
        }

        public void Dispose() => _binding.Dispose();
    }
}
