using System.Runtime.InteropServices;
using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// The tensors one row of a padded call sees (<see cref="TokenMaskRows"/>): per-token inputs cut down to the row's
/// real tokens, states and counts cut to the row, the rest as given. Outputs are handed out by
/// <see cref="TokenMaskRows"/>, which owns the whole call's outputs. Owns the native memory of its dims and copies.
/// </summary>
internal sealed unsafe class RowView : IDisposable
{
    private readonly Tensor?[] _inputs;
    private readonly List<nint> _owned = [];
    private readonly TokenMaskRows.OutputSource _outputs;

    public RowView(int inputCount, TokenMaskRows.OutputSource outputs)
    {
        _inputs = new Tensor?[inputCount];
        _outputs = outputs;
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
        var stored = (long*)Allocate(Math.Max(1, dims.Length) * sizeof(long));
        dims.CopyTo(new Span<long>(stored, dims.Length));
        return new Tensor(type, stored, dims.Length, data);
    }

    /// <summary>Native memory freed with the view (at least one byte, so an empty tensor still has an address).</summary>
    public void* Allocate(long bytes)
    {
        var p = NativeMemory.Alloc((nuint)Math.Max(1, bytes));
        _owned.Add((nint)p);
        return p;
    }

    public void Dispose()
    {
        foreach (var p in _owned)
        {
            NativeMemory.Free((void*)p);
        }
        _owned.Clear();
    }
}
