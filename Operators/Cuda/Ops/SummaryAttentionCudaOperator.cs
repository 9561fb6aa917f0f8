using OnnxAttention.Operators.Cuda.Launch;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.SummaryAttention;

namespace OnnxAttention.Operators.Cuda.Ops;

/// <summary>SummaryAttention on ORT's CUDA execution provider (<see cref="SummaryAttentionCudaLaunches"/>). NOT RUN ON A GPU YET.</summary>
/// <param name="launchers">Where the kernels launch; null: the CUDA driver on ORT's compute stream.</param>
public sealed class SummaryAttentionCudaOperator(OrtElementType activationType = OrtElementType.Float, ICudaLauncherSource? launchers = null)
    : CudaAttentionOperator(new SummaryAttentionOperator(activationType), launchers)
{
    protected override IKernel CreateCudaKernel(in KernelInfo info) => new Kernel(SummaryAttentionAttributes.Read(info), Activation, Launchers);

    private sealed class Kernel(SummaryAttentionAttributes a, CudaActivation activation, ICudaLauncherSource launchers) : IKernel
    {
        public void Compute(in KernelContext context)
        {
            var shapes = SummaryAttentionShapes.From(context, a, valuesOnHost: false);
            var s = shapes.Qkv;
            long b = s.Batch;
            var past = shapes.HasPast;
            var moving = a.Kind == SummaryKind.Moving;
            var device = new SummaryAttentionDevice(
                CudaCall.Input(context, SummaryAttentionOperator.InputQuery),
                CudaCall.Input(context, SummaryAttentionOperator.InputKey),
                CudaCall.Input(context, SummaryAttentionOperator.InputValue),
                CudaCall.Input(context, SummaryAttentionOperator.InputPastKeySummary, past),
                CudaCall.Input(context, SummaryAttentionOperator.InputPastValueSummary, past),
                CudaCall.Input(context, SummaryAttentionOperator.InputPastCount, past),
                moving ? CudaCall.Input(context, SummaryAttentionOperator.InputPastKeyWindow, past) : 0,
                moving ? CudaCall.Input(context, SummaryAttentionOperator.InputPastValueWindow, past) : 0,
                CudaCall.Output(context, SummaryAttentionOperator.OutputY, [b, s.SequenceLength, (long)a.Heads.QueryHeads * s.ValueDim]),
                CudaCall.Present(context, SummaryAttentionContract.Contract, SummaryAttentionContract.KeySummary, a, b, s.KeyDim, s.ValueDim),
                CudaCall.Present(context, SummaryAttentionContract.Contract, SummaryAttentionContract.ValueSummary, a, b, s.KeyDim, s.ValueDim),
                CudaCall.Present(context, SummaryAttentionContract.Contract, SummaryAttentionContract.Count, a, b, s.KeyDim, s.ValueDim),
                CudaCall.Present(context, SummaryAttentionContract.Contract, SummaryAttentionContract.KeyWindow, a, b, s.KeyDim, s.ValueDim),
                CudaCall.Present(context, SummaryAttentionContract.Contract, SummaryAttentionContract.ValueWindow, a, b, s.KeyDim, s.ValueDim));
            SummaryAttentionCudaLaunches.Run(launchers.For(context), a, s, activation, device);
        }
    }
}
