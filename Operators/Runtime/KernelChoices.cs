namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// Switches that force one implementation of a kernel where several compute the same thing, so a benchmark can time
/// them side by side in one process and tests can check each against the others. Production leaves them at Auto.
/// </summary>
internal static class KernelChoices
{
    /// <summary>How LinearAttention walks a sequence longer than one token.</summary>
    public static LinearPrefill LinearPrefill { get; set; }

    /// <summary>How WindowAttention runs a sequence longer than one token.</summary>
    public static WindowPrefill WindowPrefill { get; set; }

    /// <summary>Which per-(batch, KV head) item SummaryAttention, HybridAttention and SegmentAttention run.</summary>
    public static RecurrentKernel RecurrentKernel { get; set; }
}

internal enum RecurrentKernel
{
    /// <summary>The tuned item, blocks of queries for long calls where the operator has them (by length).</summary>
    Auto,
    /// <summary>The untuned item: one span primitive per cached row, as first written.</summary>
    Spans,
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
    /// <summary>Chunks of matrix products where the rule allows it (plain linear, no decay).</summary>
    Chunked,
}
