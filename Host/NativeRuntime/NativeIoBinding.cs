using OnnxAttention.Host.Generation.Backends;

namespace OnnxAttention.Host.NativeRuntime;

/// <summary>An <c>OrtIoBinding*</c> of a <see cref="NativeSession"/>: inputs and outputs bound by name, reusable across runs.</summary>
public sealed class NativeIoBinding : IBackendBinding
{
    private readonly NativeSession _session;

    internal NativeIoBinding(NativeSession session)
    {
        _session = session;
        Handle = session.Api.CreateIoBinding(session.Handle);
    }

    public nint Handle { get; private set; }

    public void Clear()
    {
        _session.Api.ClearBoundInputs(Handle);
        _session.Api.ClearBoundOutputs(Handle);
    }

    public void Input(string name, nint value) => _session.Api.BindInput(Handle, name, value);

    public void Output(string name, nint value) => _session.Api.BindOutput(Handle, name, value);

    /// <summary>ORT allocates this output in the session's state memory on each run (for shapes that change).</summary>
    public void OutputOnDevice(string name) => _session.Api.BindOutputToDevice(Handle, name, _session.DeviceMemoryInfo);

    /// <summary>Every bound output after a run, in binding order; the caller releases each.</summary>
    public nint[] OutputValues() => _session.Api.GetBoundOutputValues(Handle);

    void IBackendBinding.Input(string name, IBackendTensor value) => Input(name, HandleOf(value));

    void IBackendBinding.Output(string name, IBackendTensor value) => Output(name, HandleOf(value));

    void IBackendBinding.OutputInStateMemory(string name) => OutputOnDevice(name);

    void IBackendBinding.Run() => _session.Run(this);

    IBackendTensor[] IBackendBinding.TakeOutputs() => OutputValues().Select(v => (IBackendTensor)new NativeValue(_session.Api, v)).ToArray();

    internal static nint HandleOf(IBackendTensor tensor) => tensor is NativeValue value
        ? value.Handle
        : throw new ArgumentException($"a {tensor.GetType().Name} is not a value of a C-API session");

    public void Dispose()
    {
        if (Handle != 0)
        {
            _session.Api.ReleaseIoBinding(Handle);
            Handle = 0;
        }
    }
}
