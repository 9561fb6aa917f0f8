using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Attention.Matchers;

/// <summary>
/// Peels multiplications and divisions by scalars off a value, folding them into one factor. A scalar is a
/// constant, or with an evaluator anything computed from constants and static shapes (the 1/sqrt(head_dim) of
/// ONNX's function-expanded Attention, applied as sqrt of it to both Q and K^T).
/// </summary>
public static class ScaleMatcher
{
    public static (string Inner, double Factor) Peel(Graph g, string value, StaticEvaluator? eval = null)
    {
        bool Scalar(string v, out double x)
        {
            if (eval is not null) return eval.TryScalar(v, out x);
            return ConstantReader.TryScalar(g.Constant(v), out x);
        }

        var factor = 1.0;
        while (g.Producer(value) is { } p)
        {
            if (p.Is("Mul") && Scalar(p.Input(1), out var m))
            {
                factor *= m;
                value = p.Input(0);
            }
            else if (p.Is("Mul") && Scalar(p.Input(0), out var m0))
            {
                factor *= m0;
                value = p.Input(1);
            }
            else if (p.Is("Div") && Scalar(p.Input(1), out var d) && d != 0)
            {
                factor /= d;
                value = p.Input(0);
            }
            else
            {
                break;
            }
        }
        return (value, factor);
    }
}
