using OnnxAttention.Operators.Cuda.Launch;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.Cuda.Ops;

/// <summary>
/// The CUDA execution provider's variant of an attention operator: the CPU variant's schema (same name, domain,
/// inputs, outputs, attributes and element types) with the execution provider set, so ORT places a node on it only
/// in a session with the CUDA EP, and CPU sessions are untouched. Attributes are read and checked by the CPU
/// variant's code; the CUDA driver is loaded when the first such kernel is created (never at registration), and a
/// machine without it fails session creation with a message saying so. NOT RUN ON A GPU YET.
/// </summary>
public abstract class CudaAttentionOperator : CustomOperator
{
    /// <summary>ORT's name for the CUDA execution provider.</summary>
    public const string CudaExecutionProvider = "CUDAExecutionProvider";

    /// <param name="launchers">Where the kernels launch; null: the CUDA driver on ORT's compute stream.</param>
    protected CudaAttentionOperator(AttentionOperator cpuVariant, ICudaLauncherSource? launchers)
    {
        CpuVariant = cpuVariant;
        Launchers = launchers ?? DriverLauncherSource.Instance;
        Schema = cpuVariant.Schema with { ExecutionProvider = CudaExecutionProvider };
        Activation = CudaCall.ActivationOf(cpuVariant.ActivationType);
    }

    /// <summary>The CPU operator this one mirrors (its schema, attribute reading and shape checks).</summary>
    public AttentionOperator CpuVariant { get; }

    public CudaActivation Activation { get; }

    /// <summary>Where this operator's kernels get their launcher for a call.</summary>
    public ICudaLauncherSource Launchers { get; }

    public sealed override OperatorSchema Schema { get; }

    public sealed override IKernel CreateKernel(in KernelInfo info)
    {
        // Padded rows as on the CPU (one home for the row and layout logic); ORT hands the token_mask over in host
        // memory (NativeCustomOp.GetInputMemoryType), the row copies live on the device, on the call's stream.
        var launchers = Launchers;
        var kernel = TokenMaskRows.Wrap(CreateCudaKernel(info), Schema, (in KernelContext context) => new LauncherRowMemory(launchers.For(context)));
        launchers.Load();
        return kernel;
    }

    /// <summary>Reads the node's attributes (through the CPU variant's code) into a kernel.</summary>
    protected abstract IKernel CreateCudaKernel(in KernelInfo info);
}

/// <summary>What every CUDA kernel's Compute needs from ORT: device pointers, the stream, the launcher.</summary>
internal static unsafe class CudaCall
{
    public static CudaActivation ActivationOf(OrtElementType type) => type switch
    {
        OrtElementType.Float => CudaActivation.Float32,
        OrtElementType.Float16 => CudaActivation.Float16,
        OrtElementType.BFloat16 => CudaActivation.BFloat16,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "the CUDA kernels take float32, float16 or bfloat16 activations"),
    };

    /// <summary>The input's device pointer, or 0 when the node leaves it out.</summary>
    public static nint Input(in KernelContext context, int index) => context.HasInput(index) ? (nint)context.Input(index).Data : 0;

    /// <summary>A past-state input's device pointer when the call continues from a state (<paramref name="hasPast"/>), else 0.</summary>
    public static nint Input(in KernelContext context, int index, bool hasPast) => hasPast ? Input(context, index) : 0;

    /// <summary>Allocates the output and returns its device pointer, or 0 when the node leaves it out.</summary>
    public static nint Output(in KernelContext context, int index, ReadOnlySpan<long> shape) =>
        context.TryOutput(index, shape, out var tensor) ? (nint)tensor.Data : 0;

    /// <summary>Allocates the present of state <paramref name="state"/> shaped by its contract and returns its device pointer, or 0 when the node leaves it out.</summary>
    public static nint Present<TAttributes>(in KernelContext context, OperatorContract<TAttributes> contract, int state, TAttributes a,
        long batch, long keyDim, long valueDim)
    {
        Span<long> buffer = stackalloc long[StateShapes.MaxRank];
        return Output(context, OperatorContract<TAttributes>.PresentOutput(state), contract.Shape(state, a, batch, keyDim, valueDim, buffer));
    }
}
