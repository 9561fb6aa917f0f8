using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Tests.Support;

/// <summary>Assertions on errors that come back from ONNX Runtime.</summary>
public static class OrtAssert
{
    /// <summary>The run fails with an ORT error whose message contains <paramref name="expectedFragment"/>.</summary>
    public static void RunFails(Action run, string expectedFragment)
    {
        var e = Assert.Throws<OnnxRuntimeException>(() => run());
        Assert.That(e!.Message, Does.Contain(expectedFragment));
    }

    /// <summary>Creating a session (with our operators registered) for the model fails with that message.</summary>
    public static void SessionCreationFails(ModelProto model, string expectedFragment) =>
        RunFails(() => SessionFactory.Create(model).Dispose(), expectedFragment);

    /// <summary>Creating a session for <paramref name="model"/> without its node's <paramref name="attribute"/> fails.</summary>
    public static void SessionCreationFailsWithout(ModelProto model, string attribute, string expectedFragment)
    {
        var node = model.Graph.Node[0];
        node.Attribute.Remove(node.Attribute.Single(a => a.Name == attribute));
        SessionCreationFails(model, expectedFragment);
    }
}
