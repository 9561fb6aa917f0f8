using System.Numerics.Tensors;

namespace OnnxAttention.Operators.LinearAttention;

/// <summary>The kernel feature map phi applied to queries and keys before they meet the state. Every map keeps the dimension.</summary>
public enum FeatureMap
{
    /// <summary>phi(x) = elu(x) + 1 (Katharopoulos et al. 2020): positive, so the normaliser never vanishes.</summary>
    EluPlusOne,
    /// <summary>phi(x) = max(x, 0).</summary>
    Relu,
    /// <summary>phi(x) = x: plain linear attention, as in ORT's and ONNX's LinearAttention.</summary>
    Identity,
    /// <summary>
    /// phi(x) = max(x, 0)^2, the squared ReLU of So et al. 2021 (Primer) used element-wise: non-negative like relu,
    /// but sharper, so large matches dominate the way they do under softmax.
    /// </summary>
    SquaredRelu,
    /// <summary>
    /// phi(x) = x / sqrt(sum(x^2) + 1e-6) over the head vector: the L2 normalisation of q and k that DeltaNet
    /// (Yang et al. 2024) and Gated DeltaNet (Yang et al. 2025) apply, which keeps the delta rule's update contractive.
    /// </summary>
    L2Norm,
}

public static class FeatureMaps
{
    /// <summary>Added to the squared norm by <see cref="FeatureMap.L2Norm"/>, so a zero vector maps to zero.</summary>
    public const float L2NormEpsilon = 1e-6f;

    /// <summary>Attribute spellings, as written in a model's <c>feature_map</c> attribute.</summary>
    public static IReadOnlyDictionary<string, FeatureMap> ByName { get; } = new Dictionary<string, FeatureMap>
    {
        ["elu_plus_one"] = FeatureMap.EluPlusOne,
        ["relu"] = FeatureMap.Relu,
        ["identity"] = FeatureMap.Identity,
        ["squared_relu"] = FeatureMap.SquaredRelu,
        ["l2norm"] = FeatureMap.L2Norm,
    };

    public static string NameOf(FeatureMap map) => ByName.First(kv => kv.Value == map).Key;

    /// <summary>
    /// destination = phi(scale * source) for the element-wise maps; scale * phi(source) for l2norm, where scaling
    /// first would cancel out. For identity both read the same.
    /// </summary>
    public static void Apply(FeatureMap map, ReadOnlySpan<float> source, float scale, Span<float> destination)
    {
        switch (map)
        {
            case FeatureMap.Identity:
                TensorPrimitives.Multiply(source, scale, destination);
                break;
            case FeatureMap.Relu:
                TensorPrimitives.Multiply(source, scale, destination);
                TensorPrimitives.Max(destination, 0f, destination);
                break;
            case FeatureMap.SquaredRelu:
                TensorPrimitives.Multiply(source, scale, destination);
                TensorPrimitives.Max(destination, 0f, destination);
                TensorPrimitives.Multiply(destination, destination, destination);
                break;
            case FeatureMap.L2Norm:
                var sumOfSquares = TensorPrimitives.SumOfSquares(source);
                TensorPrimitives.Multiply(source, scale / MathF.Sqrt(sumOfSquares + L2NormEpsilon), destination);
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
