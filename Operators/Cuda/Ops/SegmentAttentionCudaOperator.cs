using OnnxAttention.Operators.Cuda.Launch;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.SegmentAttention;

namespace OnnxAttention.Operators.Cuda.Ops;

/// <summary>SegmentAttention on ORT's CUDA execution provider (<see cref="SegmentAttentionCudaLaunches"/>). NOT RUN ON A GPU YET.</summary>
/// <param name="launchers">Where the kernels launch; null: the CUDA driver on ORT's compute stream.</param>
public sealed class SegmentAttentionCudaOperator(OrtElementType activationType = OrtElementType.Float, ICudaLauncherSource? launchers = null)
    : CudaAttentionOperator(new SegmentAttentionOperator(activationType), launchers)
{
    protected override IKernel CreateCudaKernel(in KernelInfo info) => new Kernel(SegmentAttentionAttributes.Read(info), Activation, Launchers);

    private sealed class Kernel(SegmentAttentionAttributes a, CudaActivation activation, ICudaLauncherSource launchers) : IKernel
    {
        public void Compute(in KernelContext context)
        {
            var shapes = SegmentAttentionShapes.From(context, a, valuesOnHost: false);
            var s = shapes.Qkv;
            long b = s.Batch;
            var past = shapes.HasPast;
            var device = new SegmentAttentionDevice(
                CudaCall.Input(context, SegmentAttentionOperator.InputQuery),
                CudaCall.Input(context, SegmentAttentionOperator.InputKey),
                CudaCall.Input(context, SegmentAttentionOperator.InputValue),
                CudaCall.Input(context, SegmentAttentionOperator.InputPastMemoryKey, past),
                CudaCall.Input(context, SegmentAttentionOperator.InputPastMemoryValue, past),
                CudaCall.Input(context, SegmentAttentionOperator.InputPastSegmentKey, past),
                CudaCall.Input(context, SegmentAttentionOperator.InputPastSegmentValue, past),
                CudaCall.Input(context, SegmentAttentionOperator.InputPastPosition, past),
                CudaCall.Output(context, SegmentAttentionOperator.OutputY, [b, s.SequenceLength, (long)a.Heads.QueryHeads * s.ValueDim]),
                CudaCall.Present(context, SegmentAttentionContract.Contract, SegmentAttentionContract.MemoryKey, a, b, s.KeyDim, s.ValueDim),
                CudaCall.Present(context, SegmentAttentionContract.Contract, SegmentAttentionContract.MemoryValue, a, b, s.KeyDim, s.ValueDim),
                CudaCall.Present(context, SegmentAttentionContract.Contract, SegmentAttentionContract.SegmentKey, a, b, s.KeyDim, s.ValueDim),
                CudaCall.Present(context, SegmentAttentionContract.Contract, SegmentAttentionContract.SegmentValue, a, b, s.KeyDim, s.ValueDim),
                CudaCall.Present(context, SegmentAttentionContract.Contract, SegmentAttentionContract.Position, a, b, s.KeyDim, s.ValueDim));
            SegmentAttentionCudaLaunches.Run(launchers.For(context), a, s, activation, device);
        }
    }
}
