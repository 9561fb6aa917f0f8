namespace OnnxAttention.Operators.LinearAttention;

/// <summary>The kernel feature map phi applied to queries and keys before they meet the state.</summary>
public enum FeatureMap
{
    /// <summary>phi(x) = elu(x) + 1 (Katharopoulos et al. 2020): positive, so the normaliser never vanishes.</summary>
    EluPlusOne,
    /// <summary>phi(x) = max(x, 0).</summary>
    Relu,
    /// <summary>phi(x) = x: plain linear attention, as in ORT's and ONNX's LinearAttention.</summary>
    Identity,
}

public static class FeatureMaps
{
    /// <summary>Attribute spellings, as written in a model's <c>feature_map</c> attribute.</summary>
    public static IReadOnlyDictionary<string, FeatureMap> ByName { get; } = new Dictionary<string, FeatureMap>
    {
        ["elu_plus_one"] = FeatureMap.EluPlusOne,
        ["relu"] = FeatureMap.Relu,
        ["identity"] = FeatureMap.Identity,
    };

    public static string NameOf(FeatureMap map) => ByName.First(kv => kv.Value == map).Key;

    /// <summary>destination[i] = phi(scale * source[i]).</summary>
    public static void Apply(FeatureMap map, ReadOnlySpan<float> source, float scale, Span<float> destination)
    {
        switch (map)
        {
            case FeatureMap.Identity:
                System.Numerics.Tensors.TensorPrimitives.Multiply(source, scale, destination);
                break;
            case FeatureMap.Relu:
                System.Numerics.Tensors.TensorPrimitives.Multiply(source, scale, destination);
                System.Numerics.Tensors.TensorPrimitives.Max(destination, 0f, destination);
                break;
            case FeatureMap.EluPlusOne:
                for (var i = 0; i < source.Length; i++)
                {
                    var x = scale * source[i];
                    destination[i] = x > 0f ? x + 1f : MathF.Exp(x);
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(map), map, "unknown feature map");
        }
    }
}
