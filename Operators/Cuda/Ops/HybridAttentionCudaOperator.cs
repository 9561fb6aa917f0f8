using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.Cuda.Ops;

/// <summary>HybridAttention on ORT's CUDA execution provider (<see cref="HybridAttentionCudaLaunches"/>). NOT RUN ON A GPU YET.</summary>
public sealed class HybridAttentionCudaOperator(OrtElementType activationType = OrtElementType.Float)
    : CudaAttentionOperator(new HybridAttentionOperator(activationType))
{
    protected override IKernel CreateCudaKernel(in KernelInfo info)
    {
        var a = HybridAttentionAttributes.Read(info);
        return a.Compress == CompressKind.Hedgehog
            ? throw OrtException.InvalidArgument("compress=hedgehog has no CUDA kernel yet; run the node on the CPU execution provider")
            : new Kernel(a, Activation);
    }

    private sealed class Kernel(HybridAttentionAttributes a, CudaActivation activation) : IKernel
    {
        public void Compute(in KernelContext context)
        {
            var shapes = HybridAttentionShapes.From(context, a, valuesOnHost: false);
            var s = shapes.Qkv;
            long b = s.Batch;
            var past = shapes.HasPast;
            var device = new HybridAttentionDevice(
                CudaCall.Input(context, HybridAttentionOperator.InputQuery),
                CudaCall.Input(context, HybridAttentionOperator.InputKey),
                CudaCall.Input(context, HybridAttentionOperator.InputValue),
                CudaCall.Input(context, HybridAttentionOperator.InputPastKey, past),
                CudaCall.Input(context, HybridAttentionOperator.InputPastValue, past),
                CudaCall.Input(context, HybridAttentionOperator.InputPastPosition, past),
                CudaCall.Input(context, HybridAttentionOperator.InputPastCompressedKey, past),
                CudaCall.Input(context, HybridAttentionOperator.InputPastCompressedValue, past),
                CudaCall.Output(context, HybridAttentionOperator.OutputY, [b, s.SequenceLength, (long)a.Heads.QueryHeads * s.ValueDim]),
                CudaCall.Present(context, HybridAttentionContract.Contract, HybridAttentionContract.Key, a, b, s.KeyDim, s.ValueDim),
                CudaCall.Present(context, HybridAttentionContract.Contract, HybridAttentionContract.Value, a, b, s.KeyDim, s.ValueDim),
                CudaCall.Present(context, HybridAttentionContract.Contract, HybridAttentionContract.Position, a, b, s.KeyDim, s.ValueDim),
                CudaCall.Present(context, HybridAttentionContract.Contract, HybridAttentionContract.CompressedKey, a, b, s.KeyDim, s.ValueDim),
                CudaCall.Present(context, HybridAttentionContract.Contract, HybridAttentionContract.CompressedValue, a, b, s.KeyDim, s.ValueDim));
            HybridAttentionCudaLaunches.Run(CudaCall.Launcher(context), a, s, activation, device);
        }
    }
}
