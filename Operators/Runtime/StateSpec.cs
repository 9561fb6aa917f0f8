using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// Writes a state tensor's dims after the batch into <paramref name="tail"/> and returns how many it wrote, from the
/// node's attributes and a call's head dims. Allocation-free (it runs on every decode step); write it with
/// <see cref="StateShapes.Set"/>, e.g. <c>(a, dk, dv, t) =&gt; t.Set(a.Heads.KvHeads, a.Window, dk)</c>.
/// </summary>
public delegate int StateTail<in TAttributes>(TAttributes attributes, long keyDim, long valueDim, Span<long> tail);

public static class StateShapes
{
    /// <summary>Most dims of a state tensor, batch included.</summary>
    public const int MaxRank = 8;

    public static int Set(this Span<long> tail, params ReadOnlySpan<long> dims)
    {
        dims.CopyTo(tail);
        return dims.Length;
    }
}

/// <summary>
/// One piece of state an operator carries between calls: optional input <c>past_NAME</c> and optional output
/// <c>present_NAME</c>, in the same place among the state inputs and outputs. A float32 tensor [batch, ..tail], or
/// an int64 token count [batch] (<see cref="IsPosition"/>), which a swapped model feeds from its position input.
/// </summary>
/// <param name="Name">The name after past_/present_.</param>
/// <param name="Tail">Its dims after the batch.</param>
/// <param name="Layout">The shape in words, for errors and docs; called only when building them.</param>
/// <param name="Doc">What the past input holds.</param>
/// <param name="PresentDoc">What the present output holds; empty: the past after the last token.</param>
/// <param name="InPlace">The operator reads the past before writing the present at each place, so one buffer may be
/// bound as both (see <c>StateBuffer.SeedFrom</c>).</param>
/// <param name="AcceptsSharedPosition">A position that may come as [1] for every row (else [batch]).</param>
/// <param name="TokenRows">Each vector along the last axis is one token's key or value as a call gave it (a cache that
/// copies them), not an accumulation: storing it quantised per vector loses nothing a later call did not already see.</param>
public sealed record StateSpec<TAttributes>(
    string Name,
    StateTail<TAttributes> Tail,
    Func<TAttributes, string> Layout,
    string Doc,
    string PresentDoc = "",
    OrtElementType ElementType = OrtElementType.Float,
    bool InPlace = true,
    bool AcceptsSharedPosition = false,
    bool TokenRows = false)
{
    public string Past => "past_" + Name;

    public string Present => "present_" + Name;

    /// <summary>The int64 count of tokens seen, [batch]; the others are float32 tensors.</summary>
    public bool IsPosition => ElementType == OrtElementType.Int64;

    /// <summary>A token count follows the rows as <see cref="BatchLayout.Counts"/>, a float state as <see cref="BatchLayout.Rows"/>.</summary>
    public BatchLayout BatchLayout => IsPosition ? BatchLayout.Counts : BatchLayout.Rows;

    /// <summary>A token count [batch] (the tokens seen so far).</summary>
    public static StateSpec<TAttributes> Position(string name, string doc, string presentDoc, bool acceptsShared = false) =>
        new(name, static (_, _, _, _) => 0, static _ => "[batch]", doc, presentDoc, OrtElementType.Int64, AcceptsSharedPosition: acceptsShared);
}
