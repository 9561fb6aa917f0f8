using OnnxAttention.Host.Generation.Backends;
using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Host.NativeRuntime;

/// <summary>
/// <see cref="ISessionBackend"/> on a <see cref="NativeSession"/> (an ORT library driven through its C API): host
/// tensors in native memory we own, state buffers allocated by the session's allocator for its state memory
/// (<see cref="NativeSession.DeviceMemoryInfo"/>: CPU memory on the CPU EP, CUDA device memory on a CUDA EP), row
/// views made over the buffer's memory with that memory info. On CPU this is tested against the managed binding;
/// on CUDA it was NOT RUN (no GPU where it was written): in particular a row view over device memory relies on ORT
/// taking a device pointer plus an offset as tensor data, as it does for any pointer with a CUDA memory info.
/// </summary>
public sealed class NativeBackend(NativeSession session) : ISessionBackend
{
    public string StateMemory => session.DeviceMemoryName;

    public IHostTensor<T> Host<T>(long[] shape) where T : unmanaged => session.Host<T>(shape);

    public IBackendTensor AllocateState(long[] shape) => session.AllocateOnDevice(shape);

    public unsafe IBackendTensor Row(IBackendTensor state, long row, long[] rowShape)
    {
        var bytes = (nuint)(rowShape.Aggregate(1L, (a, d) => a * d) * sizeof(float));
        var start = (byte*)session.Api.GetTensorMutableData(NativeIoBinding.HandleOf(state)) + row * (long)bytes;
        return new NativeValue(session.Api, session.Api.CreateTensorWithData(session.DeviceMemoryInfo, start, bytes, rowShape, OrtElementType.Float));
    }

    public IBackendBinding CreateBinding() => session.CreateBinding();

    public void Dispose()
    {
        // The session belongs to the decoder, which outlives its generators.
    }
}
