using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Host.Generation.Backends;

/// <summary>
/// What the generation loop (<see cref="Generator"/>) needs from a session, and nothing more: tensors in host memory
/// it fills and reads (ids, positions, logits), state buffers in the session's state memory, row views of them,
/// and IO bindings it runs. <see cref="ManagedBackend"/> implements it on the managed binding, for the CPU
/// and the CUDA provider; the loop is written once against this.
/// A backend belongs to one generator, which disposes it.
/// </summary>
public interface ISessionBackend : IDisposable
{
    /// <summary>ORT's name of the memory state buffers live in ("Cpu", or "Cuda" on a CUDA EP).</summary>
    string StateMemory { get; }

    /// <summary>A zeroed tensor in host memory (a scalar for an empty shape).</summary>
    IHostTensor<T> Host<T>(long[] shape) where T : unmanaged;

    /// <summary>A zeroed host tensor of a state's element type (float, float16 or bfloat16): a sequence's first past.</summary>
    IBackendTensor HostZeros(TensorProto.Types.DataType type, long[] shape);

    /// <summary>
    /// A host tensor over the first elements of <paramref name="data"/> (a buffer the caller reuses while the shape
    /// changes, such as an attention mask one column longer every step).
    /// </summary>
    IHostTensor<T> HostOver<T>(T[] data, long[] shape) where T : unmanaged;

    /// <summary>A tensor of a state's element type in <see cref="StateMemory"/>; its contents are undefined until a run writes it.</summary>
    IBackendTensor AllocateState(TensorProto.Types.DataType type, long[] shape);

    /// <summary>
    /// Row <paramref name="row"/> of a state buffer made by <see cref="AllocateState"/>, as a tensor of
    /// <paramref name="rowShape"/> over the same memory (a view: writing it writes the buffer; it must not outlive it).
    /// </summary>
    IBackendTensor Row(IBackendTensor state, long row, long[] rowShape);

    IBackendBinding CreateBinding();

    /// <summary>A host tensor's elements as float32 (16-bit floats widened), for outputs a run gave back.</summary>
    float[] ReadFloats(IBackendTensor tensor);
}

/// <summary>A tensor a backend made, or a run gave back; disposing it releases it.</summary>
public interface IBackendTensor : IDisposable
{
}

/// <summary>A tensor in host memory the loop writes (ids, positions) or reads (logits).</summary>
public interface IHostTensor<T> : IBackendTensor where T : unmanaged
{
    Span<T> Span { get; }
}

/// <summary>An IO binding of the backend's session: inputs and outputs bound by name, run as often as wanted.</summary>
public interface IBackendBinding : IDisposable
{
    void Clear();

    void Input(string name, IBackendTensor value);

    void Output(string name, IBackendTensor value);

    /// <summary>ORT allocates this output in the state memory at each run (for a state whose shape grows).</summary>
    void OutputInStateMemory(string name);

    /// <summary>ORT allocates this output in host memory at each run (an output whose shape the caller does not fix).</summary>
    void OutputInHostMemory(string name);

    void Run();

    /// <summary>The outputs of the last run in binding order; the caller owns (disposes) each.</summary>
    IBackendTensor[] TakeOutputs();
}
