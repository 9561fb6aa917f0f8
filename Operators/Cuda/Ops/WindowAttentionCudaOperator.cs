using OnnxAttention.Operators.Cuda.Launch;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.WindowAttention;

namespace OnnxAttention.Operators.Cuda.Ops;

/// <summary>WindowAttention on ORT's CUDA execution provider (<see cref="WindowAttentionCudaLaunches"/>). NOT RUN ON A GPU YET.</summary>
/// <param name="launchers">Where the kernels launch; null: the CUDA driver on ORT's compute stream.</param>
public sealed class WindowAttentionCudaOperator(OrtElementType activationType = OrtElementType.Float, ICudaLauncherSource? launchers = null)
    : CudaAttentionOperator(new WindowAttentionOperator(activationType), launchers)
{
    protected override IKernel CreateCudaKernel(in KernelInfo info) => new Kernel(WindowAttentionAttributes.Read(info), Activation, Launchers);

    private sealed class Kernel(WindowAttentionAttributes a, CudaActivation activation, ICudaLauncherSource launchers) : IKernel
    {
        public void Compute(in KernelContext context)
        {
            var shapes = WindowAttentionShapes.From(context, a, valuesOnHost: false);
            var s = shapes.Qkv;
            long b = s.Batch;
            var past = shapes.HasPast;
            var device = new WindowAttentionDevice(
                CudaCall.Input(context, WindowAttentionOperator.InputQuery),
                CudaCall.Input(context, WindowAttentionOperator.InputKey),
                CudaCall.Input(context, WindowAttentionOperator.InputValue),
                past ? CudaCall.Input(context, WindowAttentionOperator.InputPastKeyCache) : 0,
                past ? CudaCall.Input(context, WindowAttentionOperator.InputPastValueCache) : 0,
                past ? CudaCall.Input(context, WindowAttentionOperator.InputPastPosition) : 0,
                CudaCall.Output(context, WindowAttentionOperator.OutputY, [b, s.SequenceLength, (long)a.Heads.QueryHeads * s.ValueDim]),
                CudaCall.Present(context, WindowAttentionContract.Contract, WindowAttentionContract.KeyCache, a, b, s.KeyDim, s.ValueDim),
                CudaCall.Present(context, WindowAttentionContract.Contract, WindowAttentionContract.ValueCache, a, b, s.KeyDim, s.ValueDim),
                CudaCall.Output(context, WindowAttentionOperator.OutputPresentPosition, [shapes.SharedPosition ? 1 : b]));
            WindowAttentionCudaLaunches.Run(launchers.For(context), a, s, shapes.SharedPosition, activation, device);
        }
    }
}
