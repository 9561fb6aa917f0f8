using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Operators.Cuda.Ops;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Registration;
using OnnxAttention.Operators.Runtime;
using OrtApi = OnnxAttention.Operators.Interop.OrtApi;

namespace OnnxAttention.Operators.Cuda.Registration;

/// <summary>
/// The CUDA execution provider variants, registered in the CPU operators' domain: a session gets one domain holding
/// the CPU operators and these, and ORT places each node on the variant of the provider it assigned the node to.
/// </summary>
public static class CudaOperatorRegistry
{
    /// <summary>One CUDA variant per CPU operator binding (<see cref="OperatorRegistry.Operators"/>).</summary>
    public static IReadOnlyList<CudaAttentionOperator> Variants { get; } =
    [
        new LinearAttentionCudaOperator(OrtElementType.Float),
        new LinearAttentionCudaOperator(OrtElementType.Float16),
        new LinearAttentionCudaOperator(OrtElementType.BFloat16),
        new SummaryAttentionCudaOperator(OrtElementType.Float),
        new SummaryAttentionCudaOperator(OrtElementType.Float16),
        new SummaryAttentionCudaOperator(OrtElementType.BFloat16),
        new HybridAttentionCudaOperator(OrtElementType.Float),
        new HybridAttentionCudaOperator(OrtElementType.Float16),
        new HybridAttentionCudaOperator(OrtElementType.BFloat16),
        new SegmentAttentionCudaOperator(OrtElementType.Float),
        new SegmentAttentionCudaOperator(OrtElementType.Float16),
        new SegmentAttentionCudaOperator(OrtElementType.BFloat16),
        new WindowAttentionCudaOperator(OrtElementType.Float),
        new WindowAttentionCudaOperator(OrtElementType.Float16),
        new WindowAttentionCudaOperator(OrtElementType.BFloat16),
    ];

    /// <summary>The CPU operators and the CUDA variants: the set a GPU build registers.</summary>
    public static IReadOnlyList<CustomOperator> Operators { get; } = [.. OperatorRegistry.Operators, .. Variants];

    /// <summary>Adds the domain with the CPU operators and their CUDA variants to a native <c>OrtSessionOptions*</c>.</summary>
    public static void AddTo(OrtApi api, nint sessionOptions) => OperatorRegistry.AddTo(api, sessionOptions, Operators);

    /// <summary>
    /// The CUDA-build counterpart of <see cref="SessionOptionsExtensions.RegisterOnnxAttentionOperators"/>: every
    /// operator, with its CUDA variant, for sessions on the CUDA execution provider (CPU nodes stay on the CPU ones).
    /// </summary>
    public static SessionOptions RegisterOnnxAttentionCudaOperators(this SessionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        AddTo(OrtApi.FromLoadedRuntime(), options.DangerousGetHandle());
        return options;
    }
}
