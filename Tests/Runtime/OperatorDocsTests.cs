using System.Text.RegularExpressions;
using NUnit.Framework;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Registration;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Runtime;

/// <summary>
/// docs/operators/&lt;Op&gt;.md lists the inputs and outputs of the operator's schema (built from its contract), by
/// index and name, so an input added to the contract (or to every operator through AttentionInputs) cannot go
/// undocumented.
/// </summary>
[TestFixture]
public partial class OperatorDocsTests
{
    private static IEnumerable<string> Names() =>
        OperatorRegistry.Operators.OfType<AttentionOperator>().Where(o => o.ActivationType == OrtElementType.Float).Select(o => o.Schema.Name);

    [TestCaseSource(nameof(Names))]
    public void TheOperatorPageListsEveryInputAndOutputOfTheSchema(string name)
    {
        var schema = OperatorRegistry.Operators.OfType<AttentionOperator>().First(o => o.Schema.Name == name && o.ActivationType == OrtElementType.Float).Schema;
        var page = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "docs", "operators", name + ".md"));
        Assert.That(Table(page, "## Inputs"), Is.EqualTo(schema.Inputs.Select((s, i) => (i, s.Name)).ToList()), $"{name}: inputs");
        Assert.That(Table(page, "## Outputs"), Is.EqualTo(schema.Outputs.Select((s, i) => (i, s.Name)).ToList()), $"{name}: outputs");
    }

    /// <summary>The (index, name) rows of the first table after <paramref name="heading"/>.</summary>
    private static List<(int, string)> Table(string page, string heading)
    {
        var start = page.IndexOf(heading + "\n", StringComparison.Ordinal);
        Assert.That(start, Is.GreaterThanOrEqualTo(0), $"the page has a '{heading}' section");
        var rows = new List<(int, string)>();
        var inTable = false;
        foreach (var line in page[(start + heading.Length)..].Split('\n').Skip(1))
        {
            var m = Row().Match(line);
            if (m.Success)
            {
                rows.Add((int.Parse(m.Groups[1].Value), m.Groups[2].Value));
                inTable = true;
            }
            else if (inTable && !line.StartsWith('|')) break;
        }
        return rows;
    }

    [GeneratedRegex(@"^\| (\d+) \| `([a-z_]+)` \|")]
    private static partial Regex Row();
}
