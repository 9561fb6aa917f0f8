using System.Globalization;

namespace OnnxAttention.Cli.Reporting;

/// <summary>
/// CSV lines as RFC 4180 writes them, for every bench file the CLI writes: a field holding a comma, a double quote,
/// or a line break is enclosed in double quotes with its quotes doubled; any other field is written as it is.
/// Case names and notes hold commas ("B1 H16 d64, state 0.27 MB"), which unquoted would shift every later column.
/// </summary>
public static class CsvText
{
    public static string Field(string value) =>
        value.AsSpan().IndexOfAny(",\"\r\n") < 0 ? value : "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>A number in the invariant culture (a decimal point, never a comma), 6 significant digits.</summary>
    public static string Number(double value) => value.ToString("G6", CultureInfo.InvariantCulture);

    public static string Line(params IEnumerable<string> fields) => string.Join(',', fields.Select(Field));
}
