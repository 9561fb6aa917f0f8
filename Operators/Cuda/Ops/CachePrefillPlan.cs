using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Cuda.Launch;
using OnnxAttention.Operators.Cuda.Specializations;

namespace OnnxAttention.Operators.Cuda.Ops;

/// <summary>
/// What the cache-prefill plans of <see cref="CachePrefillCudaLaunches"/> share, so each plan only names its own
/// states and attributes: the scratch, the position (copied aside when bound in place, which every store block reads)
/// and the frame of every argument list. The attention kernel takes (query, key, value, past..., output, seq_len,
/// kv_heads, attributes...); the state kernels (store, hybrid's compress) take (key, value, past..., present...,
/// seq_len, kv_heads, attributes...). Disposing it frees the scratch after the launches. NOT RUN ON A GPU YET.
/// </summary>
internal sealed class CachePrefillPlan : IDisposable
{
    private readonly ICudaLauncher launcher;
    private readonly QkvShapes shapes;
    private readonly int kvHeads;
    private readonly DeviceScratch scratch;
    private readonly ChainedState position;

    /// <param name="positions">How many position rows there are (1 when one position is shared by the batch).</param>
    public CachePrefillPlan(ICudaLauncher launcher, CachePrefillSpecialization spec, QkvShapes s, int kvHeads,
        nint pastPosition, nint presentPosition, long positions)
    {
        this.launcher = launcher;
        Spec = spec;
        shapes = s;
        this.kvHeads = kvHeads;
        scratch = new DeviceScratch(launcher);
        position = new ChainedState(scratch, pastPosition, presentPosition, positions * sizeof(long), 1,
            mayAlias: false, required: false);
    }

    public CachePrefillSpecialization Spec { get; }

    /// <summary>The position the kernels read (the past one, or its copy when bound in place; 0 when absent).</summary>
    public nint PastPosition => position.Source(0);

    public nint PresentPosition => position.Destination(0);

    /// <summary>Scratch for the call's intermediate results, freed with the plan after the launches.</summary>
    public nint Scratch(long bytes) => scratch.Allocate(bytes);

    /// <summary>The attention launch: a block per batch row, KV head and token.</summary>
    public void Attention(nint query, nint key, nint value, KernelArgument[] past, nint output, params KernelArgument[] attributes) =>
        launcher.Launch(new KernelLaunch(Spec, Spec.AttentionEntry,
            CachePrefillSpecialization.AttentionGrid(shapes.Batch, kvHeads, shapes.SequenceLength), Spec.ThreadsPerBlock, 0,
        [
            KernelArgument.Pointer("query", query),
            KernelArgument.Pointer("key", key),
            KernelArgument.Pointer("value", value),
            .. past,
            KernelArgument.Pointer("output", output),
            .. Sizes(),
            .. attributes,
        ]));

    /// <summary>The store launch over <paramref name="rows"/> rows of each state.</summary>
    public void Store(int rows, nint key, nint value, KernelArgument[] past, KernelArgument[] present, params KernelArgument[] attributes) =>
        State(Spec.StoreEntry, CachePrefillSpecialization.StoreGrid(shapes.Batch, kvHeads, rows), key, value, past, present, attributes);

    /// <summary>Any state launch (store, compress) on the given grid.</summary>
    public void State(string entry, (int X, int Y) grid, nint key, nint value, KernelArgument[] past, KernelArgument[] present,
        params KernelArgument[] attributes) =>
        launcher.Launch(new KernelLaunch(Spec, entry, grid, Spec.ThreadsPerBlock, 0,
        [
            KernelArgument.Pointer("key", key),
            KernelArgument.Pointer("value", value),
            .. past,
            .. present,
            .. Sizes(),
            .. attributes,
        ]));

    private KernelArgument[] Sizes() =>
        [KernelArgument.Int("seq_len", shapes.SequenceLength), KernelArgument.Int("kv_heads", kvHeads)];

    public void Dispose() => scratch.Dispose();
}
