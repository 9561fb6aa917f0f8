using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Attention.Matchers;

/// <summary>Peels multiplications and divisions by scalar constants off a value, folding them into one factor.</summary>
public static class ScaleMatcher
{
    public static (string Inner, double Factor) Peel(Graph g, string value)
    {
        var factor = 1.0;
        while (g.Producer(value) is { } p)
        {
            if (p.Is("Mul") && ConstantReader.TryScalar(g.Constant(p.Input(1)), out var m))
            {
                factor *= m;
                value = p.Input(0);
            }
            else if (p.Is("Mul") && ConstantReader.TryScalar(g.Constant(p.Input(0)), out var m0))
            {
                factor *= m0;
                value = p.Input(1);
            }
            else if (p.Is("Div") && ConstantReader.TryScalar(g.Constant(p.Input(1)), out var d) && d != 0)
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
