using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Attention.Matchers;

/// <summary>Recognises softcap(x) = c * tanh(x / c) with a scalar c: Mul(Tanh(Div(x, c)), c), either Mul order.</summary>
public static class SoftcapMatcher
{
    public static (string Inner, double Cap) Peel(Graph g, StaticEvaluator eval, string value)
    {
        if (g.Producer(value) is not { } mul || !mul.Is("Mul")) return (value, 0);
        foreach (var (t, c) in new[] { (mul.Input(0), mul.Input(1)), (mul.Input(1), mul.Input(0)) })
        {
            if (g.Producer(t) is { } tanh && tanh.Is("Tanh") && g.Producer(tanh.Input(0)) is { } div && div.Is("Div")
                && eval.TryScalar(c, out var cap) && eval.TryScalar(div.Input(1), out var divisor) && cap > 0 && cap == divisor)
            {
                return (div.Input(0), cap);
            }
        }
        return (value, 0);
    }
}
