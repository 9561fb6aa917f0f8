using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Support;

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
/// How a drawn case is run: float16 activations for about one seed in six and bfloat16 for another one in six
/// (one draw picks both, so the rest of each seed's draws stay what they were before bfloat16 was added), the cut
/// of the split run (0 and seq included: an empty call), how many leading tokens are decoded one call each (all of
/// a sequence of up to 16 tokens), and ORT's intra-op threads (2 for one seed in four, so the work items also run
/// in parallel).
/// </summary>
public sealed record DrawnPlan(TensorProto.Types.DataType Activation, int Cut, int DecodeTokens, int Threads)
{
    public static DrawnPlan Draw(Random r, int seq) =>
        new(r.Next(6) switch
        {
            0 => TensorProto.Types.DataType.Float16,
            1 => TensorProto.Types.DataType.Bfloat16,
            _ => TensorProto.Types.DataType.Float,
        },
            r.Next(0, seq + 1), seq <= 16 ? seq : r.Next(1, 9), r.Next(4) == 0 ? 2 : 1);

    /// <summary>q, k, v as the graph inputs hold them (rounded to the activation type): what the reference is given.</summary>
    public (float[] Q, float[] K, float[] V) Rounded(float[] q, float[] k, float[] v) =>
        (ActivationTensors.RoundTo(q, Activation), ActivationTensors.RoundTo(k, Activation), ActivationTensors.RoundTo(v, Activation));

    /// <summary>The output against the double reference.</summary>
    public Tolerance Output => Activation switch
    {
        TensorProto.Types.DataType.Float16 => Tolerance.Float16,
        TensorProto.Types.DataType.Bfloat16 => Tolerance.BFloat16,
        _ => Tolerance.Float32,
    };

    /// <summary>
    /// Split or decoded outputs against the whole run's: float32 differs only by summation order; a 16-bit output
    /// is rounded on its own in each run, so the two may land a rounding step apart (the type's own tolerance).
    /// </summary>
    public Tolerance Reordered => Activation == TensorProto.Types.DataType.Float ? Tolerance.Float32Reordered : Output;

    public override string ToString() => $"{ActivationName}, cut {Cut}, decode {DecodeTokens}" + (Threads > 1 ? $", {Threads} threads" : "");

    private string ActivationName => Activation switch
    {
        TensorProto.Types.DataType.Float16 => "float16",
        TensorProto.Types.DataType.Bfloat16 => "bfloat16",
        _ => "float32",
    };
}
