namespace OnnxAttention.Host.NativeRuntime;

/// <summary>An <c>OrtIoBinding*</c> of a <see cref="NativeSession"/>: inputs and outputs bound by name, reusable across runs.</summary>
public sealed class NativeIoBinding : IDisposable
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

    public void Dispose()
    {
        if (Handle != 0)
        {
            _session.Api.ReleaseIoBinding(Handle);
            Handle = 0;
        }
    }
}
