using NUnit.Framework;
using OnnxAttention.Cli.Bench;
using OnnxAttention.Cli.Reporting;

namespace OnnxAttention.Tests.Cli;

/// <summary>The bench CSV files: fields quoted as RFC 4180 requires, so names with commas keep their columns.</summary>
[TestFixture]
public class CsvTextTests
{
    [TestCase("decode", "decode")]
    [TestCase("B1 H16 d64", "B1 H16 d64")]
    [TestCase("", "")]
    [TestCase("a,b", "\"a,b\"")]
    [TestCase("say \"hi\"", "\"say \"\"hi\"\"\"")]
    [TestCase("two\nlines", "\"two\nlines\"")]
    [TestCase("cr\rhere", "\"cr\rhere\"")]
    public void FieldsAreQuotedOnlyWhenTheyMustBe(string value, string written) =>
        Assert.That(CsvText.Field(value), Is.EqualTo(written));

    [Test]
    public void ALineQuotesOnlyTheFieldsThatNeedIt() =>
        Assert.That(CsvText.Line("a,b", "c", CsvText.Number(1234567.0)), Is.EqualTo("\"a,b\",c,1.23457E+06"));

    [Test]
    public void FormsCsvKeepsItsColumnsWhenACaseHoldsACommaOrQuote()
    {
        var result = new SideBySide.Result(["ours, in place", "ORT \"LinearAttention\""], [[10.0, 12.0, 11.0], [20.0, 22.0, 21.0]]);
        var lines = LinearForms.Csv([new LinearForms.Row("decode", "B1 H16 d64, W=8", result, "note")]).ToList();
        Assert.That(lines, Has.Count.EqualTo(3));
        Assert.That(lines[0], Is.EqualTo("phase,case,contender,us,speedup_vs_first"));
        Assert.That(ParseLine(lines[1]), Is.EqualTo(new[] { "decode", "B1 H16 d64, W=8", "ours, in place", "11", "1" }));
        var second = ParseLine(lines[2]);
        Assert.That(second, Has.Count.EqualTo(5));
        Assert.That(second[2], Is.EqualTo("ORT \"LinearAttention\""));
        Assert.That(second[3], Is.EqualTo("21"));
    }

    /// <summary>An RFC 4180 reader of one line, written here independently of the writer under test.</summary>
    private static List<string> ParseLine(string line)
    {
        var fields = new List<string>();
        var field = new System.Text.StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var ch = line[i];
            if (quoted)
            {
                if (ch != '"') field.Append(ch);
                else if (i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; }
                else quoted = false;
            }
            else if (ch == '"') quoted = true;
            else if (ch == ',') { fields.Add(field.ToString()); field.Clear(); }
            else field.Append(ch);
        }
        fields.Add(field.ToString());
        return fields;
    }
}
