using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Tests.Reliability;

/// <summary>The generator of one seeded case.</summary>
public static class Draws
{
    /// <summary>
    /// A generator for <paramref name="seed"/>, the seed scrambled first: System.Random's first draws for
    /// consecutive seeds are strongly correlated (a run of seeds would draw nearly the same head dims).
    /// </summary>
    public static Random For(int seed)
    {
        var x = unchecked((uint)seed * 0x9E3779B9u);
        x ^= x >> 16;
        x = unchecked(x * 0x85EBCA6Bu);
        x ^= x >> 13;
        return new Random((int)(x & 0x7FFFFFFF));
    }
}

/// <summary>Shapes drawn from a seeded generator for the operators' randomized tests: GQA heads, dv != dk, short and long sequences.</summary>
public sealed record DrawnShape(int Batch, int Seq, int QHeads, int KvHeads, int Dk, int Dv, float Scale)
{
    public static DrawnShape Draw(Random r)
    {
        var kv = r.Next(1, 4);
        // One sequence in four is short enough to be decoded token by token in full.
        var seq = r.Next(4) == 0 ? r.Next(1, 17) : r.Next(1, 91);
        // Scale 0 is the operator's default 1/sqrt(head_dim); rounded so the printed case replays exactly.
        var scale = r.Next(3) == 0 ? 0f : (float)Math.Round(0.05 + r.NextDouble(), 3);
        return new DrawnShape(r.Next(1, 4), seq, kv * r.Next(1, 4), kv, r.Next(1, 71), r.Next(1, 71), scale);
    }
}

/// <summary>
/// How a drawn case is run: float16 activations for about one seed in six, the cut of the split run (0 and seq
/// included: an empty call), how many leading tokens are decoded one call each (all of a sequence of up to 16
/// tokens), and ORT's intra-op threads (2 for one seed in four, so the work items also run in parallel).
/// </summary>
public sealed record DrawnPlan(bool Half, int Cut, int DecodeTokens, int Threads)
{
    public static DrawnPlan Draw(Random r, int seq) =>
        new(r.Next(6) == 0, r.Next(0, seq + 1), seq <= 16 ? seq : r.Next(1, 9), r.Next(4) == 0 ? 2 : 1);

    public TensorProto.Types.DataType Activation => Half ? TensorProto.Types.DataType.Float16 : TensorProto.Types.DataType.Float;

    public override string ToString() => $"{(Half ? "float16" : "float32")}, cut {Cut}, decode {DecodeTokens}" + (Threads > 1 ? $", {Threads} threads" : "");
}
