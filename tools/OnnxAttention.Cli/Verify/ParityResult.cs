using System.Globalization;

namespace OnnxAttention.Cli.Verify;

/// <summary>One case's verdict: the worst element over the output and every present state, or the error that stopped it.</summary>
public sealed record ParityResult(string Case, string Scenario, ActivationType Type, bool Passed, double WorstRatio, string Where, string? Error = null,
    bool Open = false)
{
    public static ParityResult Failed(string @case, string scenario, ActivationType type, string error) =>
        new(@case, scenario, type, false, double.PositiveInfinity, "", error);

    /// <summary>The target refuses what the case asks, saying it does not support it yet: not a wrong result, but not a pass.</summary>
    public static ParityResult Unsupported(string @case, string scenario, ActivationType type, string error) =>
        new(@case, scenario, type, false, double.PositiveInfinity, "", error, Open: true);

    /// <summary>What a target says when it refuses a case it does not support yet (the CUDA variants on a token_mask with pads).</summary>
    public static bool IsUnsupported(string error) => error.Contains("not supported by the CUDA variant yet", StringComparison.Ordinal);

    /// <summary>One line: verdict, case, element type, scenario, then the worst element against its tolerance.</summary>
    public string Line()
    {
        var head = $"{(Passed ? "PASS" : Open ? "OPEN" : "FAIL"),-4}  {Case}  {Type.Name()}  {Scenario}";
        if (Error is not null) return $"{head}: {Error}";
        var ratio = double.IsPositiveInfinity(WorstRatio) ? "inf" : WorstRatio.ToString("0.###E+0", CultureInfo.InvariantCulture);
        return $"{head}: worst {ratio} of {ParityTolerance.For(Type).Name} tolerance{(Where.Length > 0 ? $" at {Where}" : "")}";
    }
}
