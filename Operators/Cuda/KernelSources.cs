namespace OnnxAttention.Operators.Cuda;

/// <summary>
/// The catalog of kernel sources embedded from Operators/Cuda/Kernels: the .cu files (one per operator and mode)
/// and the .cuh headers they include, which NVRTC is given in memory (it has no file system access to them).
/// </summary>
public static class KernelSources
{
    private const string ResourcePrefix = "OnnxAttention.Operators.Cuda.Kernels.";

    private static readonly Lazy<IReadOnlyList<KeyValuePair<string, string>>> LazyHeaders = new(() =>
        typeof(KernelSources).Assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal) && n.EndsWith(".cuh", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(n => KeyValuePair.Create(n[ResourcePrefix.Length..], Read(n[ResourcePrefix.Length..])))
            .ToArray());

    private static readonly Lazy<KernelSource> LazyLinearDecode = Source("linear_attention_decode.cu", "linear_attention_decode");
    private static readonly Lazy<KernelSource> LazyLinearPrefill = Source("linear_attention_prefill.cu", "linear_attention_prefill");
    private static readonly Lazy<KernelSource> LazyWindowDecode =
        Source("window_attention_decode.cu", "window_attention_decode", "window_attention_combine");

    private static readonly Lazy<KernelSource> LazySegmentDecode =
        Source("segment_attention_decode.cu", "segment_attention_decode", "segment_attention_combine");
    private static readonly Lazy<KernelSource> LazyHybridDecode =
        Source("hybrid_attention_decode.cu", "hybrid_attention_decode", "hybrid_attention_combine", "hybrid_attention_linear");
    private static readonly Lazy<KernelSource> LazyWindowPrefill =
        Source("window_attention_prefill.cu", "window_attention_prefill", "window_attention_store");
    private static readonly Lazy<KernelSource> LazySegmentPrefill =
        Source("segment_attention_prefill.cu", "segment_attention_prefill", "segment_attention_store");
    private static readonly Lazy<KernelSource> LazyHybridPrefill =
        Source("hybrid_attention_prefill.cu", "hybrid_attention_features", "hybrid_attention_prefill", "hybrid_attention_compress",
            "hybrid_attention_store");
    private static readonly Lazy<KernelSource> LazySummaryDecode = Source("summary_attention_decode.cu", "summary_attention_decode");

    /// <summary>LinearAttention, recurrent (decode, and token-by-token for any length); every update rule.</summary>
    public static KernelSource LinearAttentionDecode => LazyLinearDecode.Value;

    /// <summary>LinearAttention, chunked prefill (update_rule=linear), tensor cores for 16-bit activations.</summary>
    public static KernelSource LinearAttentionPrefill => LazyLinearPrefill.Value;

    /// <summary>WindowAttention decode step over the ring cache, split-K with a combine kernel.</summary>
    public static KernelSource WindowAttentionDecode => LazyWindowDecode.Value;

    /// <summary>SegmentAttention decode step over the memory and segment buffers, split-K with a combine kernel.</summary>
    public static KernelSource SegmentAttentionDecode => LazySegmentDecode.Value;

    /// <summary>HybridAttention decode step: the window (and mean slot), split-K, and the linear part's update and mix.</summary>
    public static KernelSource HybridAttentionDecode => LazyHybridDecode.Value;

    /// <summary>WindowAttention, a call of T tokens: one attention launch (a block per token), then the cache store.</summary>
    public static KernelSource WindowAttentionPrefill => LazyWindowPrefill.Value;

    /// <summary>SegmentAttention, a call of T tokens (and the in-place decode step): attention, then the state store.</summary>
    public static KernelSource SegmentAttentionPrefill => LazySegmentPrefill.Value;

    /// <summary>HybridAttention, a call of T tokens (and the in-place decode step): attention, compress, ring store.</summary>
    public static KernelSource HybridAttentionPrefill => LazyHybridPrefill.Value;

    /// <summary>SummaryAttention, recurrent (decode, and token-by-token for any length); every summary kind.</summary>
    public static KernelSource SummaryAttentionDecode => LazySummaryDecode.Value;

    /// <summary>Every kernel source.</summary>
    public static IReadOnlyList<KernelSource> All =>
    [
        LinearAttentionDecode, LinearAttentionPrefill, WindowAttentionDecode, SegmentAttentionDecode, HybridAttentionDecode,
        SummaryAttentionDecode, WindowAttentionPrefill, SegmentAttentionPrefill, HybridAttentionPrefill,
    ];

    /// <summary>The shared headers as (include name, text), in name order.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Headers => LazyHeaders.Value;

    private static Lazy<KernelSource> Source(string fileName, params string[] entryPoints) =>
        new(() => new KernelSource(fileName, Read(fileName), entryPoints));

    private static string Read(string fileName)
    {
        using var stream = typeof(KernelSources).Assembly.GetManifestResourceStream(ResourcePrefix + fileName)
            ?? throw new InvalidOperationException($"kernel source {fileName} is not embedded in {typeof(KernelSources).Assembly.GetName().Name}");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
