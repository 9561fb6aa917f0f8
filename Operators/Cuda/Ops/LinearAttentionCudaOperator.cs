using OnnxAttention.Operators.Cuda.Launch;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.Cuda.Ops;

/// <summary>LinearAttention on ORT's CUDA execution provider (<see cref="LinearAttentionCudaLaunches"/>). NOT RUN ON A GPU YET.</summary>
/// <param name="launchers">Where the kernels launch; null: the CUDA driver on ORT's compute stream.</param>
public sealed class LinearAttentionCudaOperator(OrtElementType activationType = OrtElementType.Float, ICudaLauncherSource? launchers = null)
    : CudaAttentionOperator(new LinearAttentionOperator(activationType), launchers)
{
    protected override IKernel CreateCudaKernel(in KernelInfo info) => new Kernel(LinearAttentionAttributes.Read(info), Activation, Launchers);

    private sealed class Kernel(LinearAttentionAttributes a, CudaActivation activation, ICudaLauncherSource launchers) : IKernel
    {
        public void Compute(in KernelContext context)
        {
            var s = LinearAttentionShapes.From(context, a);
            var device = new LinearAttentionDevice(
                CudaCall.Input(context, LinearAttentionOperator.InputQuery),
                CudaCall.Input(context, LinearAttentionOperator.InputKey),
                CudaCall.Input(context, LinearAttentionOperator.InputValue),
                s.HasPastState ? CudaCall.Input(context, LinearAttentionOperator.InputPastState) : 0,
                s.HasPastNormalizer ? CudaCall.Input(context, LinearAttentionOperator.InputPastNormalizer) : 0,
                s.Gate != GateLayout.None ? CudaCall.Input(context, LinearAttentionOperator.InputDecay) : 0,
                s.Beta != BetaLayout.None ? CudaCall.Input(context, LinearAttentionOperator.InputBeta) : 0,
                CudaCall.Output(context, LinearAttentionOperator.OutputY, [s.Batch, s.SequenceLength, (long)a.QueryHeads * s.ValueDim]),
                CudaCall.Present(context, LinearAttentionContract.Contract, LinearAttentionContract.State, a, s.Batch, s.KeyDim, s.ValueDim),
                CudaCall.Present(context, LinearAttentionContract.Contract, LinearAttentionContract.Normalizer, a, s.Batch, s.KeyDim, s.ValueDim));
            LinearAttentionCudaLaunches.Run(launchers.For(context), a, s, activation, device);
        }
    }
}
