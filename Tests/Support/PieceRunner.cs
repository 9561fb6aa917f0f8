using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Swapped;

namespace OnnxAttention.Tests.Support;

/// <summary>
/// The tests' spelling of <see cref="SwappedModelRunner.Run"/>: a model whose inputs are [batch, seq, width] float
/// tensors (query, key, value, ...) run in pieces along the sequence, carrying a swapped model's state (from its
/// contract) or the model's own KV cache (past inputs fed with the previous call's presents, starting empty).
/// Returns the named [batch, seq, width] output joined over the pieces.
/// </summary>
public static class PieceRunner
{
    public sealed record SequenceInput(string Name, float[] Data, int Width);

    /// <summary>A cache the model keeps itself: past input, present output, and its shape at length 0.</summary>
    public sealed record OwnCache(string Past, string Present, long[] EmptyShape);

    public static float[] Swapped(ModelProto swapped, IReadOnlyList<SequenceInput> inputs, int batch, int seq, IReadOnlyList<int> pieces, string output)
    {
        using var runner = new SwappedModelRunner(swapped, intraOpThreads: 1);
        return runner.Run(Inputs(inputs), batch, seq, pieces, output);
    }

    public static float[] WithOwnCache(ModelProto model, IReadOnlyList<SequenceInput> inputs, int batch, int seq, IReadOnlyList<int> pieces, string output, IReadOnlyList<OwnCache> caches)
    {
        var state = caches.Select(c => c.EmptyShape[0] == batch ? new StateEntry(c.Past, c.Present, TensorProto.Types.DataType.Float, c.EmptyShape[1..], Array.IndexOf(c.EmptyShape, 0L))
            : throw new ArgumentException($"cache '{c.Past}' is for a batch of {c.EmptyShape[0]}, not {batch}")).ToList();
        using var runner = new SwappedModelRunner(model, state, hasPosition: false, intraOpThreads: 1);
        return runner.Run(Inputs(inputs), batch, seq, pieces, output);
    }

    /// <summary>Pieces of <paramref name="chunk"/> tokens covering <paramref name="seq"/>.</summary>
    public static int[] Chunks(int seq, int chunk) => SwappedModelRunner.Chunks(seq, chunk);

    private static List<SwappedModelRunner.SequenceInput> Inputs(IReadOnlyList<SequenceInput> inputs) =>
        inputs.Select(x => new SwappedModelRunner.SequenceInput(x.Name, x.Data, x.Width)).ToList();
}
