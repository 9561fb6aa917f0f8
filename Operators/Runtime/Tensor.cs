using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// A borrowed view of an ORT tensor inside one Compute call: element type, shape and data pointer.
/// Valid only until Compute returns; nothing here owns memory.
/// </summary>
public readonly unsafe struct Tensor
{
    private readonly long* _dims;

    internal Tensor(OrtElementType type, long* dims, int rank, void* data)
    {
        ElementType = type;
        _dims = dims;
        Rank = rank;
        Data = data;
    }

    public OrtElementType ElementType { get; }

    public int Rank { get; }

    public void* Data { get; }

    public long Dim(int axis) => _dims[axis];

    public ReadOnlySpan<long> Shape => new(_dims, Rank);

    public long ElementCount
    {
        get
        {
            long n = 1;
            for (var i = 0; i < Rank; i++)
            {
                n *= _dims[i];
            }
            return n;
        }
    }

    public ReadOnlySpan<T> AsReadOnlySpan<T>() where T : unmanaged => new(Data, checked((int)ElementCount));

    public Span<T> AsSpan<T>() where T : unmanaged => new(Data, checked((int)ElementCount));

    public string ShapeText => "[" + string.Join(", ", Shape.ToArray()) + "]";
}
