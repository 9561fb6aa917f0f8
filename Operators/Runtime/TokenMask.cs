using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// One call's <c>token_mask</c>, checked: int64 [batch, L] with L at least the call's sequence length, whose last
/// sequence columns mark the call's tokens (1 a token, 0 padding). An attention_mask [batch, past + sequence] is
/// such a tensor as it is, so a graph can pass a model's mask without slicing it.
/// </summary>
internal readonly unsafe struct TokenMask
{
    private readonly long* _data;
    private readonly long _columns;

    private TokenMask(long* data, long columns, long sequence)
    {
        _data = data;
        _columns = columns;
        Sequence = sequence;
    }

    public long Sequence { get; }

    /// <summary>No pad among the call's tokens (found while the values are checked, so the mask is read once).</summary>
    public bool AllReal { get; private init; }

    public const string Layout = "[batch, L] int64 with L >= sequence (an attention_mask [batch, past + sequence] as it is)";

    public static TokenMask Read(in Tensor mask, long batch, long sequence)
    {
        if (mask.ElementType != OrtElementType.Int64 || mask.Rank != 2 || mask.Dim(0) != batch || mask.Dim(1) < sequence)
        {
            throw OrtException.InvalidArgument(
                $"token_mask must be {Layout}, got {mask.ElementType} {mask.ShapeText} for batch {batch} and sequence {sequence}");
        }
        var read = new TokenMask((long*)mask.Data, mask.Dim(1), sequence);
        var allReal = true;
        for (var b = 0L; b < batch; b++)
        {
            for (var t = 0L; t < sequence; t++)
            {
                var v = read.At(b, t);
                if (v is not (0 or 1))
                {
                    throw OrtException.InvalidArgument($"token_mask[{b}, {mask.Dim(1) - sequence + t}] is {v}; it must be 1 (a token) or 0 (padding)");
                }
                allReal &= v == 1;
            }
        }
        return read with { AllReal = allReal };
    }

    /// <summary>1 when token <paramref name="t"/> of the call in row <paramref name="b"/> is real, 0 when it is padding.</summary>
    public long At(long b, long t) => _data[b * _columns + _columns - Sequence + t];

    public int RealTokens(long b)
    {
        var n = 0;
        for (var t = 0L; t < Sequence; t++)
        {
            n += (int)At(b, t);
        }
        return n;
    }
}
