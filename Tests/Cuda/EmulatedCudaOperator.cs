using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Operators.Cuda.Launch;
using OnnxAttention.Operators.Cuda.Ops;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Registration;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Tests.Cuda;

/// <summary>
/// One CUDA operator variant run whole in a CPU session: its schema registered for the CPU provider (so ORT places the
/// node on it and hands it host memory), its own kernel creation and Compute, padded rows through
/// <see cref="TokenMaskRows"/> with <see cref="LauncherRowMemory"/>, and every launch, scratch allocation, row copy and
/// memset on an <see cref="EmulatorLauncher"/>, whose "device" memory is host memory. The kernels' maths is the .cu
/// source itself, compiled for the host by tools/cuda-emulator. What it does not cover: the CUDA driver, NVRTC's code,
/// ORT's CUDA provider (device allocations, its stream, the token_mask handed over in host memory).
/// </summary>
public sealed class EmulatedCudaOperator
{
    private readonly Source _source = new();

    /// <summary>One list instance: it keys ORT's custom-op domain, kept for the process like every registered one.</summary>
    private readonly IReadOnlyList<CustomOperator> _set;

    public EmulatedCudaOperator(Func<ICudaLauncherSource, CudaAttentionOperator> create) => _set = [new OnTheHost(create(_source))];

    public int Launches => _source.Launcher.Launches;

    /// <summary>Device-to-device copies and memsets: with padding, the rows' gather, scatter and zeroed pads.</summary>
    public int Copies => _source.Launcher.Copies;

    public int Zeroes => _source.Launcher.Zeroes;

    /// <summary>Scratch not yet freed: every call must free all it allocates.</summary>
    public int Outstanding => _source.Launcher.Inner.Outstanding;

    public OwnedSession Session(ModelProto model) =>
        SessionFactory.Create(model, 1, options => OperatorRegistry.AddTo(OrtApi.FromLoadedRuntime(), options.DangerousGetHandle(), _set));

    /// <summary>The CUDA variant behind its own schema with the CPU provider instead of CUDA's.</summary>
    private sealed class OnTheHost(CudaAttentionOperator cuda) : CustomOperator
    {
        public override OperatorSchema Schema { get; } = cuda.Schema with { ExecutionProvider = null };

        public override IKernel CreateKernel(in KernelInfo info) => cuda.CreateKernel(info);
    }

    private sealed class Source : ICudaLauncherSource
    {
        public CountingLauncher Launcher { get; } = new(new EmulatorLauncher());

        public void Load()
        {
        }

        public ICudaLauncher For(in KernelContext context) => Launcher;
    }

    private sealed class CountingLauncher(EmulatorLauncher inner) : ICudaLauncher
    {
        public EmulatorLauncher Inner => inner;

        public int Launches { get; private set; }

        public int Copies { get; private set; }

        public int Zeroes { get; private set; }

        public int MultiprocessorCount => inner.MultiprocessorCount;

        public int MaxDynamicSharedBytes => inner.MaxDynamicSharedBytes;

        public void Launch(KernelLaunch launch)
        {
            inner.Launch(launch);
            Launches++;
        }

        public nint Allocate(long bytes) => inner.Allocate(bytes);

        public void Free(nint pointer) => inner.Free(pointer);

        public void Copy(nint destination, nint source, long bytes)
        {
            inner.Copy(destination, source, bytes);
            Copies++;
        }

        public void Zero(nint destination, long bytes)
        {
            inner.Zero(destination, bytes);
            Zeroes++;
        }
    }
}
