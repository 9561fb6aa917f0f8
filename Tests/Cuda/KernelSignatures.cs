using System.Text.RegularExpressions;
using OnnxAttention.Operators.Cuda;
using OnnxAttention.Operators.Cuda.Launch;

namespace OnnxAttention.Tests.Cuda;

/// <summary>One parameter of an extern "C" kernel as its .cu file declares it.</summary>
public sealed record KernelParameter(string Name, KernelArgumentKind Kind, string Declaration);

/// <summary>
/// The entry points' parameter lists, parsed from the embedded .cu sources themselves (not from anything the C#
/// launch code says), so packed argument lists are checked against what the kernels really take.
/// </summary>
public static partial class KernelSignatures
{
    [GeneratedRegex(@"extern ""C"" __global__ void (?:__launch_bounds__\([^)]*\)\s*)?(\w+)\(([^)]*)\)")]
    private static partial Regex EntryPoint();

    [GeneratedRegex(@"(\w+)\s*$")]
    private static partial Regex LastIdentifier();

    private static readonly Lazy<IReadOnlyDictionary<string, IReadOnlyList<KernelParameter>>> Parsed = new(Parse);

    public static IReadOnlyDictionary<string, IReadOnlyList<KernelParameter>> All => Parsed.Value;

    public static IReadOnlyList<KernelParameter> Of(string entryPoint) =>
        All.TryGetValue(entryPoint, out var parameters) ? parameters : throw new KeyNotFoundException($"no kernel {entryPoint} in the .cu sources");

    private static IReadOnlyDictionary<string, IReadOnlyList<KernelParameter>> Parse()
    {
        var result = new Dictionary<string, IReadOnlyList<KernelParameter>>();
        foreach (var source in KernelSources.All)
        {
            foreach (Match m in EntryPoint().Matches(source.Text))
            {
                result[m.Groups[1].Value] = m.Groups[2].Value.Split(',').Select(p => ParseParameter(p.Trim())).ToArray();
            }
        }
        return result;
    }

    private static KernelParameter ParseParameter(string declaration)
    {
        var collapsed = Regex.Replace(declaration, @"\s+", " ");
        var name = LastIdentifier().Match(collapsed).Groups[1].Value;
        var type = collapsed[..^name.Length].Trim();
        var kind = type.Contains('*') ? KernelArgumentKind.Pointer
            : type == "int" ? KernelArgumentKind.Int
            : type == "float" ? KernelArgumentKind.Float
            : throw new NotSupportedException($"parameter type '{type}' in '{declaration}'");
        return new KernelParameter(name, kind, collapsed);
    }
}
