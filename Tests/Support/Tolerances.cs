namespace OnnxAttention.Tests.Support;

/// <summary>Named tolerances: |got - want| &lt;= Absolute + Relative * |want|, per element type.</summary>
public readonly record struct Tolerance(double Absolute, double Relative)
{
    /// <summary>float32 kernels against the double reference; sums of up to a few hundred terms.</summary>
    public static readonly Tolerance Float32 = new(2e-5, 2e-4);

    /// <summary>Two float32 computations of the same maths in a different order (prefill vs decode, split vs whole).</summary>
    public static readonly Tolerance Float32Reordered = new(1e-5, 1e-4);

    /// <summary>Logits of a whole float32 network against a double reference (errors accumulate over layers).</summary>
    public static readonly Tolerance Float32Logits = new(1e-4, 1e-4);

    /// <summary>float16 activations (inputs rounded to half, state float32, output rounded to half: ~1e-3 relative).</summary>
    public static readonly Tolerance Float16 = new(2e-3, 2e-3);

    /// <summary>
    /// bfloat16 activations (inputs rounded to bfloat16, state float32, output rounded to bfloat16). bfloat16 keeps
    /// 8 bits of mantissa (7 stored plus the implicit one), so one rounding to nearest is off by up to
    /// u = 2^-8 ~ 3.9e-3 relative, and two results computed in a different order may round to neighbouring values one
    /// ulp (up to 2u) apart; 8e-3 is about 2u. The references take the bfloat16-rounded inputs, so input rounding
    /// is not part of the error.
    /// </summary>
    public static readonly Tolerance BFloat16 = new(8e-3, 8e-3);

    /// <summary>The ONNX conformance suite and fixture logits use 1e-3.</summary>
    public static readonly Tolerance Conformance = new(1e-3, 1e-3);
}
