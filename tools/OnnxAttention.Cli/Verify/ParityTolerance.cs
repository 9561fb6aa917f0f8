namespace OnnxAttention.Cli.Verify;

/// <summary>
/// How far the kernel under test may be from the reference kernel, per activation type:
/// |got - want| &lt;= Absolute + Relative * |want| for every element of the output and of every state.
/// </summary>
public sealed record ParityTolerance(string Name, double Absolute, double Relative)
{
    /// <summary>
    /// float32 on both sides, summed in another order (split-K decode, chunked prefill, warp reductions): the CPU
    /// tests allow 1e-4 relative between two orders on one machine; 5e-4 leaves room for the GPU's FMA contraction.
    /// </summary>
    public static readonly ParityTolerance Float32 = new("float32", 1e-4, 5e-4);

    /// <summary>
    /// float16 activations: the output is rounded to half (u = 2^-11 ~ 4.9e-4 relative) and the GPU kernels feed
    /// half operands to tensor-core products (the probabilities are rounded before P·V); 4e-3 is about 8u.
    /// </summary>
    public static readonly ParityTolerance Float16 = new("float16", 4e-3, 4e-3);

    /// <summary>
    /// bfloat16 activations: u = 2^-8 ~ 3.9e-3; the output rounding, the rounded probabilities of the tensor-core
    /// products and a neighbouring ulp add up to about 3u; 2e-2 is about 5u.
    /// </summary>
    public static readonly ParityTolerance BFloat16 = new("bfloat16", 2e-2, 2e-2);

    public static ParityTolerance For(ActivationType type) => type switch
    {
        ActivationType.Float32 => Float32,
        ActivationType.Float16 => Float16,
        ActivationType.BFloat16 => BFloat16,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>|got - want| over what this tolerance allows at want: at most 1 passes; NaN or infinity where the
    /// other side is finite (or a different non-finite value) counts as infinitely far.</summary>
    public double Ratio(double got, double want)
    {
        if (!double.IsFinite(got) || !double.IsFinite(want))
        {
            return got.Equals(want) ? 0 : double.PositiveInfinity;
        }
        return Math.Abs(got - want) / (Absolute + Relative * Math.Abs(want));
    }

    public override string ToString() => $"{Name}: abs {Absolute:G2} + rel {Relative:G2}";
}
