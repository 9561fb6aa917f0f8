using System.Numerics.Tensors;
using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// A float32 view of a tensor whose elements are float32 (borrowed, no copy) or float16 or bfloat16 (converted into
/// a native scratch block that the view holds until disposed, then kept for later calls: <see cref="ScratchBlocks"/>). Kernels compute in float32 whatever the activation type, and state
/// tensors are float32 always, so the accumulation never happens in half precision.
/// </summary>
public unsafe struct FloatView : IDisposable
{
    private bool _owned;
    private readonly long _capacity;

    internal FloatView(float* data, long length, bool owned, long capacity = 0)
    {
        Data = data;
        Length = length;
        _owned = owned;
        _capacity = capacity;
    }

    public float* Data { get; private set; }

    public long Length { get; }

    public void Dispose()
    {
        if (_owned)
        {
            ScratchBlocks.Shared.Return(Data, _capacity);
            Data = null;
            _owned = false;
        }
    }
}

public static unsafe class FloatIO
{
    /// <summary>The activation types our kernels accept.</summary>
    public static bool IsSupported(OrtElementType type) =>
        type is OrtElementType.Float or OrtElementType.Float16 or OrtElementType.BFloat16;

    /// <summary>How the activation types are named in messages.</summary>
    public const string SupportedText = "float32, float16 or bfloat16";

    /// <summary>Reads an input as float32.</summary>
    public static FloatView Read(in Tensor input)
    {
        var n = input.ElementCount;
        switch (input.ElementType)
        {
            case OrtElementType.Float:
                return new FloatView((float*)input.Data, n, owned: false);
            case OrtElementType.Float16:
                var buffer = Scratch(n);
                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(input.Data, checked((int)n)), new Span<float>(buffer.Data, (int)n));
                return buffer;
            case OrtElementType.BFloat16:
                var widened = Scratch(n);
                BFloat16Bits.ToSingle(new ReadOnlySpan<ushort>(input.Data, checked((int)n)), new Span<float>(widened.Data, (int)n));
                return widened;
            default:
                throw OrtException.InvalidArgument($"element type {input.ElementType} is not supported ({SupportedText})");
        }
    }

    /// <summary>Somewhere to compute an output in float32: the output itself when it is float32, else scratch.</summary>
    public static FloatView Writable(in Tensor output) =>
        output.ElementType == OrtElementType.Float
            ? new FloatView((float*)output.Data, output.ElementCount, owned: false)
            : Scratch(output.ElementCount);

    /// <summary>
    /// Moves a <see cref="Writable"/> view's values into the output (a round-to-nearest-even conversion when it is
    /// float16 or bfloat16).
    /// </summary>
    public static void Commit(in FloatView view, in Tensor output)
    {
        switch (output.ElementType)
        {
            case OrtElementType.Float16:
                var n = checked((int)output.ElementCount);
                TensorPrimitives.ConvertToHalf(new ReadOnlySpan<float>(view.Data, n), new Span<Half>(output.Data, n));
                break;
            case OrtElementType.BFloat16:
                var m = checked((int)output.ElementCount);
                BFloat16Bits.FromSingle(new ReadOnlySpan<float>(view.Data, m), new Span<ushort>(output.Data, m));
                break;
        }
    }

    /// <summary>A float32 view over a scratch block kept between calls (<see cref="ScratchBlocks"/>), freed on dispose.</summary>
    private static FloatView Scratch(long count)
    {
        var data = (float*)ScratchBlocks.Shared.Rent(Math.Max(1, count) * sizeof(float), out var capacity);
        return new FloatView(data, count, owned: true, capacity);
    }
}
