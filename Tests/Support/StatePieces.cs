namespace OnnxAttention.Tests.Support;

/// <summary>
/// The carried-state check every cache operator makes: the whole sequence in one call equals the same sequence
/// cut into pieces (one token each for decode), each piece starting from the previous piece's present state.
/// </summary>
public static class StatePieces
{
    /// <summary>Every cut from 1 to seq - 1: token-by-token decode.</summary>
    public static int[] EveryToken(int seq) => Enumerable.Range(1, seq - 1).ToArray();

    /// <param name="run">One call: (token count, query, key, value, past state) to the session's outputs.</param>
    /// <param name="innerCuts">Where pieces start, strictly increasing inside (0, seq).</param>
    /// <param name="assertSameState">(state after the last piece, state after the whole call).</param>
    /// <param name="eachPiece">Extra checks on every piece's outputs.</param>
    public static void AssertPiecesEqualWhole<TState, TOutputs>(IAttentionCase<TState> c, TState start, IReadOnlyList<int> innerCuts,
        Func<int, float[], float[], float[], TState, TOutputs> run, Action<TState, TState> assertSameState, Action<TOutputs>? eachPiece = null)
        where TOutputs : IStateOutputs<TState>
    {
        var whole = run(c.Seq, c.Query, c.Key, c.Value, start);
        int qw = c.QHeads * c.Dk, kw = c.KvHeads * c.Dk, vw = c.KvHeads * c.Dv, yw = c.QHeads * c.Dv;
        int[] cuts = [0, .. innerCuts, c.Seq];
        var state = start;
        var joined = new float[whole.Y.Length];
        for (var p = 0; p + 1 < cuts.Length; p++)
        {
            int from = cuts[p], count = cuts[p + 1] - cuts[p];
            var piece = run(count, SequenceSlices.Slice(c.Query, c.Batch, c.Seq, qw, from, count),
                SequenceSlices.Slice(c.Key, c.Batch, c.Seq, kw, from, count),
                SequenceSlices.Slice(c.Value, c.Batch, c.Seq, vw, from, count), state);
            SequenceSlices.Place(piece.Y, joined, c.Batch, c.Seq, yw, from, count);
            eachPiece?.Invoke(piece);
            state = piece.Present!;
        }
        TensorAssert.Close(joined, whole.Y, Tolerance.Float32Reordered, $"{c}: outputs");
        assertSameState(state, whole.Present!);
    }
}
