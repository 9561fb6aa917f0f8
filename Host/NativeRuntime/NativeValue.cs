using System.Runtime.InteropServices;
using OnnxAttention.Host.Generation.Backends;
using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Host.NativeRuntime;

/// <summary>An owned <c>OrtValue*</c> of a C-API session, released once.</summary>
public class NativeValue : IBackendTensor
{
    private readonly OrtSessionApi _api;

    public NativeValue(OrtSessionApi api, nint handle)
    {
        _api = api;
        Handle = handle;
    }

    public nint Handle { get; private set; }

    public long[] Shape => _api.GetShape(Handle);

    public OrtElementType ElementType => _api.GetElementType(Handle);

    public virtual void Dispose()
    {
        if (Handle != 0)
        {
            _api.ReleaseValue(Handle);
            Handle = 0;
        }
        GC.SuppressFinalize(this);
    }
}

/// <summary>A tensor in native host memory we own (zeroed at creation), readable and writable as a span.</summary>
public sealed unsafe class HostTensor<T> : NativeValue, IHostTensor<T> where T : unmanaged
{
    private void* _data;

    private HostTensor(OrtSessionApi api, nint handle, void* data, int length) : base(api, handle)
    {
        _data = data;
        Length = length;
    }

    public HostTensor(OrtSessionApi api, nint cpuMemoryInfo, ReadOnlySpan<long> shape)
        : this(api, Create(api, cpuMemoryInfo, shape, out var data, out var length), data, length)
    {
    }

    public int Length { get; }

    public Span<T> Span => new(_data, Length);

    private static nint Create(OrtSessionApi api, nint memoryInfo, ReadOnlySpan<long> shape, out void* data, out int length)
    {
        var count = 1L;
        foreach (var d in shape) count *= d;
        length = checked((int)count);
        var bytes = (nuint)(Math.Max(1, length) * sizeof(T));
        data = NativeMemory.AlignedAlloc(bytes, 64);
        NativeMemory.Clear(data, bytes);
        try
        {
            return api.CreateTensorWithData(memoryInfo, data, (nuint)(length * sizeof(T)), shape, TypeOfT);
        }
        catch
        {
            NativeMemory.AlignedFree(data);
            throw;
        }
    }

    private static OrtElementType TypeOfT =>
        typeof(T) == typeof(float) ? OrtElementType.Float
        : typeof(T) == typeof(long) ? OrtElementType.Int64
        : typeof(T) == typeof(int) ? OrtElementType.Int32
        : typeof(T) == typeof(Half) ? OrtElementType.Float16
        : typeof(T) == typeof(Microsoft.ML.OnnxRuntime.BFloat16) ? OrtElementType.BFloat16
        : throw new NotSupportedException($"host tensors of {typeof(T).Name}");

    public override void Dispose()
    {
        // The value goes first: it points into the buffer.
        base.Dispose();
        if (_data != null)
        {
            NativeMemory.AlignedFree(_data);
            _data = null;
        }
    }
}
