using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// The swap owns every metadata key under <see cref="Prefix"/>: hosts read them as the swapped model's contract. A
/// model that reaches the swap carrying one of them without being swapped (no <see cref="ModelContract.RuleKey"/>)
/// was edited or forged, and is refused rather than cleaned: its keys would otherwise sit beside (and, read first,
/// override) the ones the swap writes, and a silently dropped key would hide that the file is not what it claims.
/// </summary>
public static class InputMetadata
{
    public const string Prefix = "onnx_attention.";

    /// <summary>Throws when an unswapped model carries a key of ours (a swapped one is refused as already swapped).</summary>
    public static void RefuseOurKeys(ModelProto model, string what = "the model")
    {
        if (model.MetadataProps.Any(p => p.Key == ModelContract.RuleKey)) return;
        var ours = model.MetadataProps.FirstOrDefault(p => p.Key.StartsWith(Prefix, StringComparison.Ordinal));
        if (ours is not null)
        {
            throw new GraphException($"{what} carries metadata '{ours.Key}' although it was not swapped by OnnxAttention (no '{ModelContract.RuleKey}'); " +
                                     $"keys starting with '{Prefix}' are written only by the swap: remove them from the model");
        }
    }
}
