using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Attention.Matchers;

/// <summary>
/// Recognises how exporters turn the key into K^T for the score MatMul:
/// Transpose(K[B,H,T,d], perm=[0,1,3,2]); Transpose(K[B,T,H,d], perm=[0,2,3,1]); or, from decomposed SDPA,
/// Reshape(Transpose(Reshape(K[B,H,T,d] to [B*H,T,d]), perm=[0,2,1]) back to [B,H,d,T]).
/// </summary>
public static class KeyTransposeMatcher
{
    public static (string Key, KeyLayout Layout)? Match(Graph g, ValueShapes shapes, string keyTransposed, out string reason) =>
        Match(g, shapes.Of, keyTransposed, out reason);

    public static (string Key, KeyLayout Layout)? Match(Graph g, Func<string, long?[]?> shapeOf, string keyTransposed, out string reason)
    {
        reason = "";
        var p = g.Producer(keyTransposed);
        if (p is null)
        {
            reason = $"the score MatMul's second operand '{keyTransposed}' is not computed from a key (no producer)";
            return null;
        }
        if (p.Is("Transpose"))
        {
            var perm = p.IntsAttribute("perm");
            if (perm is [0, 1, 3, 2]) return (p.Input(0), KeyLayout.Bhsd);
            if (perm is [0, 2, 3, 1]) return (p.Input(0), KeyLayout.Bshd);
            reason = $"key transpose {p} has perm [{string.Join(",", perm ?? [])}], expected [0,1,3,2] or [0,2,3,1]";
            return null;
        }
        if (p.Is("Reshape") && g.Producer(p.Input(0)) is { } t && t.Is("Transpose") && t.IntsAttribute("perm") is [0, 2, 1]
            && g.Producer(t.Input(0)) is { } r && r.Is("Reshape"))
        {
            var key = r.Input(0);
            if (shapeOf(key)?.Length is { } rank && rank != 4)
            {
                reason = $"decomposed key transpose starts from '{key}' of rank {rank}, expected 4";
                return null;
            }
            return (key, KeyLayout.Bhsd);
        }
        reason = $"the score MatMul's second operand comes from {p}, not a transpose of the key";
        return null;
    }
}
