using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.AttentionCommon;

/// <summary>Checks of optional past-state inputs: presence as a group, element type and exact shape.</summary>
internal static class StateChecks
{
    /// <summary>
    /// True when every input of <paramref name="group"/> is given, false when none is; a partial group is an
    /// error, since starting part of the state from zeros while the rest carries history gives wrong outputs.
    /// </summary>
    public static bool AllOrNone(in KernelContext context, string what, ReadOnlySpan<(int Index, string Name)> group)
    {
        // Counted first so that a good call (every decode step) allocates nothing; the names are listed only for the error.
        var givenCount = 0;
        foreach (var (index, _) in group)
        {
            if (context.HasInput(index)) givenCount++;
        }
        if (givenCount != 0 && givenCount != group.Length)
        {
            var given = new List<string>();
            var missing = new List<string>();
            foreach (var (index, name) in group)
            {
                (context.HasInput(index) ? given : missing).Add(name);
            }
            throw OrtException.InvalidArgument(
                $"{what} comes as a group ({string.Join(", ", given.Concat(missing))}): got {string.Join(", ", given)} but not {string.Join(", ", missing)}");
        }
        return givenCount == group.Length;
    }

    /// <summary>Whether <see cref="RequireShape"/> would pass: lets a caller build an expensive layout text only for the error.</summary>
    public static bool HasShape(in Tensor t, OrtElementType type, ReadOnlySpan<long> expected) =>
        t.ElementType == type && t.Shape.SequenceEqual(expected);

    public static void RequireShape(in Tensor t, string name, OrtElementType type, ReadOnlySpan<long> expected, string layout)
    {
        if (t.ElementType != type)
        {
            throw OrtException.InvalidArgument($"{name} must be {TypeName(type)}, got {t.ElementType}");
        }
        if (!t.Shape.SequenceEqual(expected))
        {
            throw OrtException.InvalidArgument(
                $"{name} has shape {t.ShapeText}; expected {layout} = [{string.Join(", ", expected.ToArray())}]");
        }
    }

    /// <summary>Token counts carried as state must be non-negative.</summary>
    public static unsafe void RequireNonNegative(in Tensor t, string name)
    {
        var values = new ReadOnlySpan<long>(t.Data, checked((int)t.ElementCount));
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] < 0)
            {
                throw OrtException.InvalidArgument($"{name}[{i}] is {values[i]}; token counts cannot be negative");
            }
        }
    }

    /// <summary>
    /// Token counts carried as state must leave room for this call's tokens: the present count (and the position
    /// of the call's last token) must still be an int64, not wrap to a negative count.
    /// </summary>
    public static unsafe void RequireRoomFor(in Tensor t, string name, long sequenceLength)
    {
        var values = new ReadOnlySpan<long>(t.Data, checked((int)t.ElementCount));
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] > long.MaxValue - sequenceLength)
            {
                throw OrtException.InvalidArgument(
                    $"{name}[{i}] is {values[i]}; adding the sequence length {sequenceLength} overflows int64");
            }
        }
    }

    private static string TypeName(OrtElementType type) => type switch
    {
        OrtElementType.Float => "float32 (state is always float32)",
        OrtElementType.Int64 => "int64",
        _ => type.ToString(),
    };
}
