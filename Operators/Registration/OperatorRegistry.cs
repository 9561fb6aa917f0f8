using System.Text;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.SegmentAttention;
using OnnxAttention.Operators.SummaryAttention;
using OnnxAttention.Operators.WindowAttention;

namespace OnnxAttention.Operators.Registration;

/// <summary>
/// Builds the OnnxAttention custom-op domain once per ORT library (keyed by its OrtApi table) and operator set, and
/// adds it to session options. The CPU operators are the set of this assembly; the CUDA variants live in
/// OnnxAttention.Operators.Cuda, whose registry passes its own set (these plus the variants) to the same domain name.
/// A domain belongs to the library that created it, so each table gets its own, and the kernels of a session call
/// back through the table ORT hands to CreateKernelV2 (its own).
/// Domains and their ops are never released: ORT requires them to outlive every session that used them.
/// </summary>
public static unsafe class OperatorRegistry
{
    /// <summary>The ONNX domain of every OnnxAttention operator.</summary>
    public const string Domain = "com.onnxattention";

    private static readonly Lock Gate = new();
    private static readonly Dictionary<(nint Api, IReadOnlyList<CustomOperator> Set, KernelForms? Forms), nint> s_domains = [];
    private static OrtApi s_api;

    /// <summary>Every CPU operator (one entry per element-type binding).</summary>
    public static IReadOnlyList<CustomOperator> Operators { get; } =
    [
        new LinearAttentionOperator(OrtElementType.Float),
        new LinearAttentionOperator(OrtElementType.Float16),
        new LinearAttentionOperator(OrtElementType.BFloat16),
        new SummaryAttentionOperator(OrtElementType.Float),
        new SummaryAttentionOperator(OrtElementType.Float16),
        new SummaryAttentionOperator(OrtElementType.BFloat16),
        new HybridAttentionOperator(OrtElementType.Float),
        new HybridAttentionOperator(OrtElementType.Float16),
        new HybridAttentionOperator(OrtElementType.BFloat16),
        new SegmentAttentionOperator(OrtElementType.Float),
        new SegmentAttentionOperator(OrtElementType.Float16),
        new SegmentAttentionOperator(OrtElementType.BFloat16),
        new WindowAttentionOperator(OrtElementType.Float),
        new WindowAttentionOperator(OrtElementType.Float16),
        new WindowAttentionOperator(OrtElementType.BFloat16),
    ];

    /// <summary>
    /// The first table used at registration; a fallback for reporting errors where no other is at hand (only when a
    /// kernel's own handle cannot be read, which does not happen in practice).
    /// </summary>
    internal static OrtApi Api => s_api;

    /// <summary>Adds the domain with the CPU operators to the native <c>OrtSessionOptions*</c>.</summary>
    public static void AddTo(OrtApi api, nint sessionOptions) => AddTo(api, sessionOptions, Operators, null);

    /// <summary>
    /// Adds the domain with <paramref name="operators"/> (one list instance per set: it keys the domain) to the
    /// native <c>OrtSessionOptions*</c>. One set per session options: two domains of one name would clash.
    /// </summary>
    public static void AddTo(OrtApi api, nint sessionOptions, IReadOnlyList<CustomOperator> operators) => AddTo(api, sessionOptions, operators, null);

    /// <summary>
    /// Adds a domain whose kernels run the forms <paramref name="forms"/> forces (tests and benchmarks; one domain per
    /// forms object, operator set and table, never released like the others).
    /// </summary>
    internal static void AddTo(OrtApi api, nint sessionOptions, KernelForms? forms) => AddTo(api, sessionOptions, Operators, forms);

    private static void AddTo(OrtApi api, nint sessionOptions, IReadOnlyList<CustomOperator> operators, KernelForms? forms)
    {
        if (sessionOptions == 0)
        {
            throw new ArgumentException("session options handle is null", nameof(sessionOptions));
        }
        StatusBoundary.ThrowIfError(api, api.AddCustomOpDomain(sessionOptions, GetOrCreateDomain(api, operators, forms)));
    }

    private static nint GetOrCreateDomain(OrtApi api, IReadOnlyList<CustomOperator> operators, KernelForms? forms)
    {
        lock (Gate)
        {
            if (s_domains.TryGetValue((api.Handle, operators, forms), out var existing))
            {
                return existing;
            }
            nint domain = 0;
            var name = Encoding.UTF8.GetBytes(Domain + "\0");
            fixed (byte* p = name)
            {
                StatusBoundary.ThrowIfError(api, api.CreateCustomOpDomain(p, &domain));
            }
            foreach (var op in operators)
            {
                StatusBoundary.ThrowIfError(api, api.CustomOpDomainAdd(domain, NativeCustomOp.Create(op, forms)));
            }
            s_domains.Add((api.Handle, operators, forms), domain);
            if (s_api.IsNull)
            {
                s_api = api;
            }
            return domain;
        }
    }
}
