using System.Text.Json;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Graphs;

/// <summary>The project's onnx.proto reads real exported models and writes them back without loss.</summary>
[TestFixture]
public class OnnxProtoTests
{
    private static string FixtureDir(string name) => Path.Combine(TestPaths.Shared, "fixtures", "exported-decoders", name);

    public static IEnumerable<string> Fixtures() => ["gpt2-eager-dynamo", "llama-gqa-eager-dynamo", "llama-gqa-sdpa-dynamo18"];

    [TestCaseSource(nameof(Fixtures))]
    public void ParsesExportedModelsWithTheOpCountsTheExporterReported(string fixture)
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(FixtureDir(fixture), "model.onnx")));
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureDir(fixture), "fixture.json")));
        var expected = json.RootElement.GetProperty("ops").EnumerateObject()
            .ToDictionary(p => p.Name, p => p.Value.GetInt32());
        var actual = model.Graph.Node
            .GroupBy(n => $"{(n.Domain.Length == 0 ? "ai.onnx" : n.Domain)}::{n.OpType}")
            .ToDictionary(g => g.Key, g => g.Count());
        Assert.That(actual, Is.EquivalentTo(expected));
        Assert.That(model.OpsetImport.Single(o => o.Domain.Length == 0).Version, Is.EqualTo(18));
    }

    [TestCaseSource(nameof(Fixtures))]
    public void RewrittenModelStillReproducesTheReferenceLogits(string fixture)
    {
        var dir = FixtureDir(fixture);
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(dir, "model.onnx")));
        var bytes = model.ToByteArray();
        var ids = TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(dir, "test_data", "input_ids.pb")));
        var want = TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(dir, "test_data", "logits_softmax.pb")));

        using var options = new SessionOptions();
        using var session = new InferenceSession(bytes, options);
        using var input = OrtValue.CreateTensorValueFromMemory(Tensors.ToInt64Array(ids), ids.Dims.ToArray());
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, [session.InputNames[0]], [input], [session.OutputNames[0]]);
        Assert.That(results[0].GetTensorTypeAndShape().Shape, Is.EqualTo(want.Dims.ToArray()));
        TensorAssert.Close(results[0].GetTensorDataAsSpan<float>(), Tensors.ToFloatArray(want), Tolerance.Conformance, $"{fixture} logits");
    }

    [Test]
    public void BuilderModelsDeclareSymbolicDimsAndOpsets()
    {
        var model = new ModelBuilder("g")
            .Opset("com.example", 3)
            .Input("x", TensorProto.Types.DataType.Float, "batch", 4)
            .Node("Relu", ["x"], ["y"])
            .Output("y", TensorProto.Types.DataType.Float, "batch", 4)
            .Build();
        var parsed = ModelProto.Parser.ParseFrom(model.ToByteArray());
        var dims = parsed.Graph.Input[0].Type.TensorType.Shape.Dim;
        Assert.That(dims[0].DimParam, Is.EqualTo("batch"));
        Assert.That(dims[1].DimValue, Is.EqualTo(4));
        Assert.That(parsed.OpsetImport.Select(o => (o.Domain, o.Version)), Is.EquivalentTo(new[] { ("", 17L), ("com.example", 3L) }));
        Assert.That(parsed.Graph.Node[0].Name, Is.EqualTo("Relu_0"));
    }

    [Test]
    public void NodesInAnUndeclaredDomainAreRefused() =>
        Assert.Throws<InvalidOperationException>(() => new ModelBuilder().Node("X", ["a"], ["b"], domain: "com.nowhere"));
}
