using System.Runtime.InteropServices;
using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// The tensors one row of a padded call sees (<see cref="TokenMaskRows"/>): per-token inputs cut down to the row's
/// real tokens, states and counts cut to the row, the rest as given. Outputs are handed out by
/// <see cref="TokenMaskRows"/>, which owns the whole call's outputs. Owns its dims (host memory) and its copies (in
/// the call's <see cref="IRowMemory"/>: device memory for a CUDA kernel).
/// </summary>
internal sealed unsafe class RowView : IDisposable
{
    private readonly Tensor?[] _inputs;
    private readonly List<nint> _dims = [];
    private readonly List<nint> _owned = [];
    private readonly TokenMaskRows.OutputSource _outputs;
    private readonly IRowMemory _memory;

    public RowView(int inputCount, TokenMaskRows.OutputSource outputs, IRowMemory memory)
    {
        _inputs = new Tensor?[inputCount];
        _outputs = outputs;
        _memory = memory;
    }

    public int InputCount => _inputs.Length;

    public bool HasInput(int index) => index < _inputs.Length && _inputs[index] is not null;

    public Tensor Input(int index) =>
        HasInput(index) ? _inputs[index]!.Value : throw OrtException.InvalidArgument($"input {index} is missing");

    public bool TryOutput(int index, ReadOnlySpan<long> shape, out Tensor tensor) => _outputs(index, shape, out tensor);

    public void Set(int index, Tensor tensor) => _inputs[index] = tensor;

    /// <summary>A tensor over <paramref name="data"/> with a copy of <paramref name="dims"/> that lives as long as this view.</summary>
    public Tensor Make(OrtElementType type, ReadOnlySpan<long> dims, void* data)
    {
        var stored = (long*)NativeMemory.Alloc((nuint)(Math.Max(1, dims.Length) * sizeof(long)));
        _dims.Add((nint)stored);
        dims.CopyTo(new Span<long>(stored, dims.Length));
        return new Tensor(type, stored, dims.Length, data);
    }

    /// <summary>Row memory (host or device, as the call's) freed with the view.</summary>
    public void* Allocate(long bytes)
    {
        var p = _memory.Allocate(bytes);
        _owned.Add((nint)p);
        return p;
    }

    public void Dispose()
    {
        foreach (var p in _owned)
        {
            _memory.Free((void*)p);
        }
        _owned.Clear();
        foreach (var p in _dims)
        {
            NativeMemory.Free((void*)p);
        }
        _dims.Clear();
    }
}
