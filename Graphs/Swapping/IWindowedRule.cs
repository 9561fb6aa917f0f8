namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// A rule whose state is mostly an exact window of the last W tokens, so that W is the knob that trades state bytes
/// (linear in W) for quality: plain and sink windows, hybrids (fitted or not) and windows that keep token ids.
/// </summary>
public interface IWindowedRule
{
    /// <summary>The tokens the window keeps.</summary>
    int Window { get; }

    /// <summary>The same rule with a window of <paramref name="window"/> tokens (everything else, fitted weights included, kept).</summary>
    AttentionRule WithWindow(int window);

    /// <summary>The window of <paramref name="rule"/>, seen through a state type, or null when it has none.</summary>
    static int? WindowOf(AttentionRule rule) => rule switch
    {
        StateTypeRule typed => WindowOf(typed.Inner),
        IWindowedRule windowed => windowed.Window,
        _ => null,
    };

    /// <summary><paramref name="rule"/> with another window, in the same state type; null when it has no window.</summary>
    static AttentionRule? Resized(AttentionRule rule, int window) => rule switch
    {
        StateTypeRule typed => Resized(typed.Inner, window) is { } inner ? typed with { Inner = inner } : null,
        IWindowedRule windowed => windowed.WithWindow(window),
        _ => null,
    };
}
