using System.Globalization;

namespace OnnxAttention.Cli.Bench;

/// <summary>
/// One of issue 17's bench targets, measured: the figure, its unit, the limit it must meet and how, and what ORT's own
/// kernel gave on the same inputs. Printed as one <c>TARGET</c> line (verify.sh's reply and ci-check look for them).
/// </summary>
/// <param name="Relation">How the figure must compare with the limit: &lt;, &lt;=, &gt;= or &gt;.</param>
public sealed record TargetVerdict(string Name, double Figure, string Unit, string Relation, double Limit, string Detail)
{
    public bool Met => Relation switch
    {
        "<" => Figure < Limit,
        "<=" => Figure <= Limit,
        ">=" => Figure >= Limit,
        ">" => Figure > Limit,
        _ => throw new ArgumentException($"unknown relation '{Relation}'"),
    };

    public string Line =>
        $"TARGET {Name}: {Number(Figure)} {Unit} ({Relation} {Limit.ToString(CultureInfo.InvariantCulture)}) {(Met ? "met" : "not met")}; {Detail}";

    /// <summary>A figure with two to three significant digits (at least the integer part).</summary>
    public static string Number(double value) =>
        value.ToString(Math.Abs(value) >= 100 ? "F0" : Math.Abs(value) >= 10 ? "F1" : "F2", CultureInfo.InvariantCulture);
}
