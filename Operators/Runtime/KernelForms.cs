using OnnxAttention.Operators.LinearAttention;

namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// The kernel forms a test or benchmark forces where several compute the same thing, for the sessions whose options it
/// registered with this object (<see cref="Registration.OperatorRegistry.AddTo(Interop.OrtApi, nint, KernelForms)"/>),
/// so they can be timed side by side in one process and checked against each other. Production registers none: every
/// kernel then picks its tuned form by shape. Read at each Compute, so a benchmark may change it between runs of one
/// session. The forms that are not the operators' own (untuned items, the chunked prefill) live outside this library
/// and come in as function pointers.
/// </summary>
internal sealed unsafe class KernelForms
{
    /// <summary>How LinearAttention walks a sequence longer than one token.</summary>
    public LinearPrefill LinearPrefill { get; set; }

    /// <summary>How WindowAttention runs a sequence longer than one token.</summary>
    public WindowPrefill WindowPrefill { get; set; }

    /// <summary>Which of their tuned items HybridAttention and SegmentAttention run for a call longer than one token.</summary>
    public RecurrentKernel RecurrentKernel { get; set; }

    /// <summary>
    /// Run for each LinearAttention (batch, KV head) item once its state holds the past, before the operator's own
    /// prefill; returns false to leave the item to it. Null: the operator's own.
    /// </summary>
    public delegate*<in LinearAttentionCpu.Job, int, int, float*, float*, bool> LinearItem;

    /// <summary>Run instead of SummaryAttention's item (the job pointer and the item index); null: its own.</summary>
    public delegate*<void*, nint, void> SummaryItem;

    /// <summary>Run instead of HybridAttention's item once the unwritten ring rows are cleared; null: its own.</summary>
    public delegate*<void*, nint, void> HybridItem;

    /// <summary>Run instead of SegmentAttention's item; null: its own.</summary>
    public delegate*<void*, nint, void> SegmentItem;
}

internal enum RecurrentKernel
{
    /// <summary>The tuned item, blocks of queries for long calls where the operator has them (by length).</summary>
    Auto,
    /// <summary>The tuned item, token by token even for long calls.</summary>
    PerToken,
    /// <summary>Blocks of queries through matrix products for every call longer than one token, where the operator has them.</summary>
    Blocks,
}

internal enum WindowPrefill
{
    /// <summary>By length and window (blocks for long calls with long windows).</summary>
    Auto,
    /// <summary>Each query against its window, token by token.</summary>
    PerToken,
    /// <summary>Blocks of queries through matrix products.</summary>
    Blocks,
}

internal enum LinearPrefill
{
    /// <summary>The kernel's own choice by rule, shape and length.</summary>
    Auto,
    /// <summary>One pass over the state per token (the decode step, repeated).</summary>
    PerToken,
    /// <summary>Four tokens per pass over the state where the rule allows it.</summary>
    TokenBlocks,
}
