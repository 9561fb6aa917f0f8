using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Reliability;

/// <summary>
/// The split and decode properties of the seeded operator tests, written once over a function that runs one slice
/// of a [batch, seq, width] sequence from a given state and returns its output and the state after it: cutting
/// the sequence anywhere and carrying the state across the cut, or feeding it token by token, gives the output and
/// final state of the one whole run.
/// </summary>
public sealed class SequenceProperties<TState>(int batch, int seq, (float[] Data, int Width) query, (float[] Data, int Width) key,
    (float[] Data, int Width) value, int outputWidth, SequenceProperties<TState>.RunSlice run,
    Action<TState, TState, string> assertSameState, Tolerance outputTolerance)
{
    /// <summary>Runs <paramref name="count"/> tokens (q, k, v are [batch, count, width]) from <paramref name="state"/>.</summary>
    public delegate (float[] Y, TState State) RunSlice(int count, float[] q, float[] k, float[] v, TState state);

    /// <summary>The sequence as consecutive pieces (of any length, 0 included), the state carried from each to the next.</summary>
    public (float[] Y, TState State) InPieces(TState start, IReadOnlyList<int> pieces)
    {
        if (pieces.Sum() != seq) throw new ArgumentException($"pieces [{string.Join(", ", pieces)}] do not cover {seq} tokens");
        var joined = new float[batch * seq * outputWidth];
        var state = start;
        var at = 0;
        foreach (var n in pieces)
        {
            var (y, next) = run(n, Slice(query, at, n), Slice(key, at, n), Slice(value, at, n), state);
            SequenceSlices.Place(y, joined, batch, seq, outputWidth, at, n);
            state = next;
            at += n;
        }
        return (joined, state);
    }

    /// <summary>Two calls, cut after <paramref name="cut"/> tokens (0 and seq give an empty call), equal the whole run.</summary>
    public void SplitEqualsWhole(TState start, (float[] Y, TState State) whole, int cut, string label)
    {
        var split = InPieces(start, [cut, seq - cut]);
        TensorAssert.Close(split.Y, whole.Y, outputTolerance, $"{label}: split at {cut}, outputs");
        assertSameState(split.State, whole.State, $"{label}: split at {cut}, final state");
    }

    /// <summary>
    /// The first <paramref name="decodeTokens"/> tokens one call each, then the rest in one call, equal the whole run
    /// (decodeTokens = seq: pure token-by-token decode).
    /// </summary>
    public void DecodeEqualsWhole(TState start, (float[] Y, TState State) whole, int decodeTokens, string label)
    {
        int[] pieces = [.. Enumerable.Repeat(1, decodeTokens), .. decodeTokens < seq ? new[] { seq - decodeTokens } : []];
        var decoded = InPieces(start, pieces);
        TensorAssert.Close(decoded.Y, whole.Y, outputTolerance, $"{label}: {decodeTokens} decode steps, outputs");
        assertSameState(decoded.State, whole.State, $"{label}: {decodeTokens} decode steps, final state");
    }

    private float[] Slice((float[] Data, int Width) x, int start, int count) =>
        SequenceSlices.Slice(x.Data, batch, seq, x.Width, start, count);
}
