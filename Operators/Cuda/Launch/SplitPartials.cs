namespace OnnxAttention.Operators.Cuda.Launch;

/// <summary>
/// The split-K partial buffers of one decode launch: partial_acc [rows * splits, d_v], partial_max and
/// partial_sum [rows * splits] for rows = batch per launch * q_heads; all null with one split.
/// </summary>
public readonly record struct SplitPartials(nint Accumulator, nint Maximum, nint Sum)
{
    public static SplitPartials Allocate(DeviceScratch scratch, int splits, int queryRows, int valueDim)
    {
        if (splits <= 1)
        {
            return default;
        }
        long cells = (long)queryRows * splits;
        return new SplitPartials(scratch.Allocate(cells * valueDim * sizeof(float)), scratch.Allocate(cells * sizeof(float)),
            scratch.Allocate(cells * sizeof(float)));
    }

    public IEnumerable<KernelArgument> Arguments()
    {
        yield return KernelArgument.Pointer("partial_acc", Accumulator);
        yield return KernelArgument.Pointer("partial_max", Maximum);
        yield return KernelArgument.Pointer("partial_sum", Sum);
    }

    /// <summary>The arguments of a combine kernel: the partials, then its outputs, then the split count.</summary>
    public KernelArgument[] CombineArguments(int splits, params ReadOnlySpan<KernelArgument> outputs) =>
        [.. Arguments(), .. outputs, KernelArgument.Int("splits", splits)];
}
