using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;

namespace OnnxAttention.Tests.Support;

/// <summary>
/// Runs a model whose inputs are [batch, seq, width] float tensors (query, key, value, ...) in pieces along the
/// sequence, carrying a state from piece to piece: a swapped model's state (read from its metadata, plus the past
/// length input), or the model's own KV cache (past inputs fed with the previous call's presents, starting empty).
/// Returns the named [batch, seq, width] output joined over the pieces.
/// </summary>
public static class PieceRunner
{
    public sealed record SequenceInput(string Name, float[] Data, int Width);

    /// <summary>A cache the model keeps itself: past input, present output, and its shape at length 0.</summary>
    public sealed record OwnCache(string Past, string Present, long[] EmptyShape);

    public static float[] Swapped(ModelProto swapped, IReadOnlyList<SequenceInput> inputs, int batch, int seq, IReadOnlyList<int> pieces, string output)
    {
        var info = ModelContract.Read(swapped);
        var state = info.State.Select(s => new OwnCache(s.Past, s.Present, [batch, .. s.TailShape])).ToList();
        return Run(swapped, inputs, batch, seq, pieces, output, state, info.HasPositionInput);
    }

    public static float[] WithOwnCache(ModelProto model, IReadOnlyList<SequenceInput> inputs, int batch, int seq, IReadOnlyList<int> pieces, string output, IReadOnlyList<OwnCache> caches) =>
        Run(model, inputs, batch, seq, pieces, output, caches, hasPosition: false);

    /// <summary>Pieces of <paramref name="chunk"/> tokens covering <paramref name="seq"/>.</summary>
    public static int[] Chunks(int seq, int chunk) =>
        Enumerable.Range(0, (seq + chunk - 1) / chunk).Select(i => Math.Min(chunk, seq - i * chunk)).ToArray();

    private static float[] Run(ModelProto model, IReadOnlyList<SequenceInput> inputs, int batch, int seq, IReadOnlyList<int> pieces, string output,
        IReadOnlyList<OwnCache> caches, bool hasPosition)
    {
        if (pieces.Sum() != seq) throw new ArgumentException($"pieces [{string.Join(", ", pieces)}] do not cover {seq} tokens");
        using var runner = new TypedModelRunner(model);
        var carried = caches.Select(c => TypedTensor.Of(new float[c.EmptyShape.Aggregate(1L, (a, d) => a * d)], c.EmptyShape)).ToList();
        float[]? result = null;
        var start = 0;
        foreach (var n in pieces)
        {
            var feed = inputs.Select(x => KeyValuePair.Create(x.Name, TypedTensor.Of(SequenceSlices.Slice(x.Data, batch, seq, x.Width, start, n), batch, n, x.Width))).ToList();
            if (hasPosition) feed.Add(KeyValuePair.Create(PositionOffset.InputName, TypedTensor.Of(new long[] { start })));
            feed.AddRange(caches.Select((c, i) => KeyValuePair.Create(c.Past, carried[i])));
            var r = runner.Run(feed, [output, .. caches.Select(c => c.Present)]);
            var y = r[output].Floats;
            var width = y.Length / (batch * n);
            result ??= new float[batch * seq * width];
            SequenceSlices.Place(y, result, batch, seq, width, start, n);
            for (var i = 0; i < caches.Count; i++) carried[i] = r[caches[i].Present];
            start += n;
        }
        return result!;
    }
}
