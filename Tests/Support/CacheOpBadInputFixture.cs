using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Tests.Support;

/// <summary>
/// The query/key/value shape checks every cache operator's kernel makes, written once. Each operator's bad-input
/// fixture derives from this, keeps its own [Test] methods (names and expected messages stay in that fixture) and
/// calls these with its message; the run goes through the operator's own session with the fixture's good past state,
/// and the same session must still give the reference output afterwards.
/// </summary>
public abstract class CacheOpBadInputFixture<TCase, TState, TSession>
    where TCase : IAttentionCase<TState>
    where TSession : IDisposable
{
    protected abstract TCase GoodCase { get; }

    /// <summary>A session wired with every past input and output.</summary>
    /// <param name="declareShapes">false: graph inputs carry no shape, so the kernel (not ORT) sees wrong ranks.</param>
    protected abstract TSession Open(bool declareShapes);

    /// <summary>Runs <see cref="GoodCase"/>'s past state with these activations; null shapes are the case's own.</summary>
    protected abstract void Run(TSession session, float[] query, float[] key, float[] value,
        long[]? queryShape = null, long[]? keyShape = null, long[]? valueShape = null);

    /// <summary>The good case through the same session matches the reference.</summary>
    protected abstract void AssertWorksAfterFailure(TSession session);

    private void RunFails(bool declareShapes, Action<TSession> run, string expectedFragment)
    {
        using var s = Open(declareShapes);
        OrtAssert.RunFails(() => run(s), expectedFragment);
        AssertWorksAfterFailure(s);
    }

    protected void QueryOfWrongRankFails(string expectedFragment)
    {
        var c = GoodCase;
        RunFails(false, s => Run(s, c.Query, c.Key, c.Value, queryShape: [c.Batch * c.Seq, c.QHeads * c.Dk]), expectedFragment);
    }

    protected void KeyOfWrongRankFails(string expectedFragment)
    {
        var c = GoodCase;
        RunFails(false, s => Run(s, c.Query, c.Key, c.Value, keyShape: [c.Batch, c.Seq, c.KvHeads, c.Dk]), expectedFragment);
    }

    protected void SequenceMismatchFails(string expectedFragment)
    {
        var c = GoodCase;
        RunFails(true, s => Run(s, c.Query, c.Key, new float[c.Batch * (c.Seq + 1) * c.KvHeads * c.Dv],
            valueShape: [c.Batch, c.Seq + 1, c.KvHeads * c.Dv]), expectedFragment);
    }

    /// <summary>A query whose last dimension is 30 (not a multiple of the good case's 4 query heads).</summary>
    protected void QueryNotDivisibleFails(string expectedFragment)
    {
        var c = GoodCase;
        RunFails(true, s => Run(s, new float[c.Batch * c.Seq * 30], c.Key, c.Value, queryShape: [c.Batch, c.Seq, 30]),
            expectedFragment);
    }

    protected void KeyHeadDimMismatchFails(string expectedFragment)
    {
        var c = GoodCase;
        var badKey = new float[c.Batch * c.Seq * c.KvHeads * (c.Dk + 1)];
        RunFails(true, s => Run(s, c.Query, badKey, c.Value, keyShape: [c.Batch, c.Seq, c.KvHeads * (c.Dk + 1)]), expectedFragment);
    }

    /// <summary>A value whose last dimension is 7 (not a multiple of the good case's 2 KV heads).</summary>
    protected void ValueNotDivisibleFails(string expectedFragment)
    {
        var c = GoodCase;
        RunFails(true, s => Run(s, c.Query, c.Key, new float[c.Batch * c.Seq * 7], valueShape: [c.Batch, c.Seq, 7]), expectedFragment);
    }

    /// <summary>Creating a session for <paramref name="model"/> without its <paramref name="attribute"/> fails.</summary>
    protected static void SessionCreationFailsWithout(ModelProto model, string attribute, string expectedFragment)
    {
        var node = model.Graph.Node[0];
        node.Attribute.Remove(node.Attribute.Single(a => a.Name == attribute));
        OrtAssert.SessionCreationFails(model, expectedFragment);
    }
}
