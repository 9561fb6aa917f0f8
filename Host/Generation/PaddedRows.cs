namespace OnnxAttention.Host.Generation;

/// <summary>
/// Where each row's tokens sit in a batch of prompts padded to the longest, L columns, with generated tokens from
/// column L on: pads before a row's prompt (Hugging Face generate, Optimum exports) or after it (onnxruntime-genai,
/// whose GroupQueryAttention reads the first seqlens_k + 1 keys of a row). From this come the three things a model
/// reads about padding: the attention mask (1 for real and generated tokens), position ids (a row's count of real
/// tokens before each one, HF's cumsum(mask) - 1, 1 at pads) and the position offset a swapped model adds to
/// 0 .. n - 1 within a call (chosen so that a row's real tokens land on their own positions).
/// </summary>
public sealed class PaddedRows
{
    private readonly int[] _lengths;

    public PaddedRows(IReadOnlyList<int> promptLengths, bool padsOnTheRight)
    {
        _lengths = promptLengths.ToArray();
        PromptColumns = _lengths.Max();
        PadsOnTheRight = padsOnTheRight;
    }

    /// <summary>L: the longest prompt; every row's prompt part spans columns 0 .. L - 1.</summary>
    public int PromptColumns { get; }

    public bool PadsOnTheRight { get; }

    public int Rows => _lengths.Length;

    public bool HasPads => _lengths.Any(n => n != PromptColumns);

    private int Pads(int row) => PromptColumns - _lengths[row];

    /// <summary>Whether column <paramref name="column"/> of row <paramref name="row"/> holds a token (not a pad).</summary>
    public bool IsReal(int row, long column) =>
        column >= PromptColumns || (PadsOnTheRight ? column < _lengths[row] : column >= Pads(row));

    /// <summary>The column of a prompt token (the <paramref name="index"/>-th of the row).</summary>
    public int ColumnOf(int row, int index) => PadsOnTheRight ? index : Pads(row) + index;

    /// <summary>Which prompt token of the row column <paramref name="column"/> (below L) holds; -1 for a pad.</summary>
    public int PromptIndex(int row, int column) => !IsReal(row, column) ? -1 : PadsOnTheRight ? column : column - Pads(row);

    /// <summary>Real tokens of a row in columns 0 .. <paramref name="columns"/> - 1.</summary>
    public long RealBefore(int row, long columns)
    {
        var n = _lengths[row];
        if (columns >= PromptColumns) return n + (columns - PromptColumns);
        return PadsOnTheRight ? Math.Min(columns, n) : Math.Max(0, columns - Pads(row));
    }

    /// <summary>
    /// The position offset of a call covering columns <paramref name="start"/> .. + <paramref name="count"/>: the row's
    /// first real token in it lands on its own position (pads before it get the positions below, negative for left
    /// pads; nothing attends to them).
    /// </summary>
    public long Offset(int row, long start, int count)
    {
        var seen = RealBefore(row, start);
        if (PadsOnTheRight) return seen;
        var padsInCall = Math.Clamp(Pads(row) - start, 0, count);
        return seen - padsInCall;
    }

    /// <summary>Writes the mask of columns 0 .. <paramref name="columns"/> - 1, [rows, columns], row-major.</summary>
    public void Mask(Span<long> mask, int columns)
    {
        for (var b = 0; b < Rows; b++)
        {
            var row = mask.Slice(b * columns, columns);
            for (var c = 0; c < columns; c++) row[c] = IsReal(b, c) ? 1 : 0;
        }
    }

    /// <summary>Position ids of columns <paramref name="start"/> .. + <paramref name="count"/>, [rows, count]: HF generate's cumsum(mask) - 1, 1 at pads.</summary>
    public void PositionIds(Span<long> positions, long start, int count)
    {
        for (var b = 0; b < Rows; b++)
        {
            for (var t = 0; t < count; t++)
            {
                var c = start + t;
                positions[b * count + t] = IsReal(b, c) ? RealBefore(b, c) : 1;
            }
        }
    }
}
