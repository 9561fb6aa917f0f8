using System.Globalization;

namespace OnnxAttention.Cli.Verify;

/// <summary>One case's verdict: the worst element over the output and every present state, or the error that stopped it.</summary>
public sealed record ParityResult(string Case, string Scenario, ActivationType Type, bool Passed, double WorstRatio, string Where, string? Error = null)
{
    public static ParityResult Failed(string @case, string scenario, ActivationType type, string error) =>
        new(@case, scenario, type, false, double.PositiveInfinity, "", error);

    /// <summary>One line: verdict, case, element type, scenario, then the worst element against its tolerance.</summary>
    public string Line()
    {
        var head = $"{(Passed ? "PASS" : "FAIL"),-4}  {Case}  {Type.Name()}  {Scenario}";
        if (Error is not null) return $"{head}: {Error}";
        var ratio = double.IsPositiveInfinity(WorstRatio) ? "inf" : WorstRatio.ToString("0.###E+0", CultureInfo.InvariantCulture);
        return $"{head}: worst {ratio} of {ParityTolerance.For(Type).Name} tolerance{(Where.Length > 0 ? $" at {Where}" : "")}";
    }
}
