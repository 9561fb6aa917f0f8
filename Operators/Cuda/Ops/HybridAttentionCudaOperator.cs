using OnnxAttention.Operators.Cuda.Launch;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.Cuda.Ops;

/// <summary>HybridAttention on ORT's CUDA execution provider (<see cref="HybridAttentionCudaLaunches"/>). NOT RUN ON A GPU YET.</summary>
/// <param name="launchers">Where the kernels launch; null: the CUDA driver on ORT's compute stream.</param>
public sealed class HybridAttentionCudaOperator(OrtElementType activationType = OrtElementType.Float, ICudaLauncherSource? launchers = null)
    : CudaAttentionOperator(new HybridAttentionOperator(activationType), launchers)
{
    /// <summary>The compressed memories the CUDA kernels implement: every kind.</summary>
    public static IReadOnlyList<CompressKind> Compressions { get; } = Enum.GetValues<CompressKind>();

    protected override IKernel CreateCudaKernel(in KernelInfo info)
    {
        var a = HybridAttentionAttributes.Read(info);
        if (a.Compress == CompressKind.Hedgehog && CachePrefillSpecialization.HedgehogDoesNotFit(a.Heads.GroupSize, a.Projections) is { } why)
        {
            throw OrtException.InvalidArgument(why + "; run the node on the CPU execution provider");
        }
        return new Kernel(a, Activation, Launchers);
    }

    private sealed class Kernel(HybridAttentionAttributes a, CudaActivation activation, ICudaLauncherSource launchers) : IKernel
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
                CudaCall.Present(context, HybridAttentionContract.Contract, HybridAttentionContract.CompressedValue, a, b, s.KeyDim, s.ValueDim),
                CudaCall.Input(context, HybridAttentionOperator.InputFeatureQueryWeight),
                CudaCall.Input(context, HybridAttentionOperator.InputFeatureQueryBias),
                CudaCall.Input(context, HybridAttentionOperator.InputFeatureKeyWeight),
                CudaCall.Input(context, HybridAttentionOperator.InputFeatureKeyBias),
                CudaCall.Input(context, HybridAttentionOperator.InputMix));
            HybridAttentionCudaLaunches.Run(launchers.For(context), a, s, activation, device);
        }
    }
}
