using System.Text.RegularExpressions;
using NUnit.Framework;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Interop;

/// <summary>Recounts the OrtApi table from the C header in the restored NuGet package and checks our slot numbers.</summary>
[TestFixture]
public partial class OrtApiSlotHeaderTests
{
    [GeneratedRegex(@"/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex BlockComment();

    [GeneratedRegex(@"//[^\n]*")]
    private static partial Regex LineComment();

    [GeneratedRegex(@"^\s*#[^\n]*$", RegexOptions.Multiline)]
    private static partial Regex Preprocessor();

    [GeneratedRegex(@"^ORT_API2_STATUS\s*\(\s*(\w+)")]
    private static partial Regex StatusMember();

    [GeneratedRegex(@"^ORT_CLASS_RELEASE\s*\(\s*(\w+)")]
    private static partial Regex ReleaseMember();

    [GeneratedRegex(@"^ORT_API_T\s*\(\s*[^,]+,\s*(\w+)")]
    private static partial Regex TypedMember();

    [GeneratedRegex(@"\(\s*ORT_API_CALL\s*\*\s*(\w+)\s*\)")]
    private static partial Regex PlainMember();

    /// <summary>Member names of <c>struct OrtApi</c>, in declaration order (= slot order).</summary>
    internal static List<string> HeaderMembers(string? header = null)
    {
        var text = File.ReadAllText(header ?? TestPaths.OrtCApiHeader);
        var start = text.IndexOf("struct OrtApi {", StringComparison.Ordinal);
        Assert.That(start, Is.GreaterThanOrEqualTo(0), "struct OrtApi not found in the header");
        var open = text.IndexOf('{', start);
        var depth = 0;
        var end = open;
        for (; end < text.Length; end++)
        {
            if (text[end] == '{') depth++;
            else if (text[end] == '}' && --depth == 0) break;
        }
        var body = text[(open + 1)..end];
        body = Preprocessor().Replace(LineComment().Replace(BlockComment().Replace(body, " "), " "), " ");

        var members = new List<string>();
        foreach (var raw in body.Split(';'))
        {
            var m = raw.Trim();
            if (m.Length == 0) continue;
            var name = StatusMember().Match(m) is { Success: true } s ? s.Groups[1].Value
                : ReleaseMember().Match(m) is { Success: true } r ? "Release" + r.Groups[1].Value
                : TypedMember().Match(m) is { Success: true } t ? t.Groups[1].Value
                : PlainMember().Match(m) is { Success: true } p ? p.Groups[1].Value
                : throw new AssertionException($"unrecognised OrtApi member: {m[..Math.Min(120, m.Length)]}");
            members.Add(name);
        }
        return members;
    }

    [Test]
    public void EverySlotWeCallHasItsHeaderName()
    {
        var members = HeaderMembers();
        Assert.That(members, Has.Count.GreaterThanOrEqualTo(428), "OrtApi of 1.31 has 428 members, 1.32 has 429");
        foreach (var slot in Enum.GetValues<OrtApiSlot>())
        {
            Assert.That(members[(int)slot], Is.EqualTo(slot.ToString()), $"slot {(int)slot}");
        }
    }
}
