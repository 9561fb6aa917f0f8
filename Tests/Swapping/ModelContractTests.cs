using NUnit.Framework;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Swapping;

/// <summary>
/// The swapped model's contract as the swap writes it and hosts read it back (<see cref="ModelContract"/>), and the
/// reader's refusal of metadata it did not write: one <see cref="ModelContractException"/> naming the key and the problem.
/// </summary>
[TestFixture]
public class ModelContractTests
{
    private static string Fixture(params string[] parts) => Path.Combine([TestPaths.Shared, "fixtures", .. parts]);

    private static ModelProto Gpt2() => ModelFile.Load(Fixture("exported-decoders", "gpt2-eager-dynamo", "model.onnx"));

    private static ModelProto Swapped(string rule)
    {
        var model = Gpt2();
        AttentionSwapper.Swap(model, AttentionRule.Parse(rule));
        return model;
    }

    [Test]
    public void WindowContractReadsBackWhatTheSwapDeclared()
    {
        var model = Gpt2();
        var report = AttentionSwapper.Swap(model, AttentionRule.Parse("window:16,sinks=2"));
        var c = ModelContract.Read(model);
        Assert.That(c.Rule, Is.EqualTo("window:16,sinks=2"));
        Assert.That(c.Layers, Is.EqualTo(2));
        Assert.That(c.State.Select(s => s.Past), Is.EqualTo(report.State.Select(s => s.Past)));
        Assert.That(c.State.Select(s => s.Present), Is.EqualTo(report.State.Select(s => s.Present)));
        var key = c.State[0];
        Assert.That(key.TailShape, Is.EqualTo(new long[] { report.Replaced[0].KvHeads, 18, report.Replaced[0].HeadDim }));
        Assert.That(key.ElementType, Is.EqualTo(TensorProto.Types.DataType.Float));
        Assert.That(c.State.All(s => !s.Grows && s.InPlace), "a ring-buffer cache is fixed-size and taken in place by WindowAttention");
        Assert.That(c.IdsInput, Is.EqualTo(model.Graph.Input[0].Name));
        Assert.That(c.HasPositionInput);
    }

    [Test]
    public void SoftmaxCacheGrowsAndIsNeverInPlace()
    {
        var c = ModelContract.Read(Swapped("softmax"));
        Assert.That(c.State, Is.Not.Empty);
        Assert.That(c.State.All(s => s.Grows && !s.InPlace && s.GrowingAxis == 2 && s.TailShape[1] == 0));
        Assert.That(c.State[0].ElementsPerRow, Is.Zero);
        Assert.That(c.State[0].ElementsPerToken, Is.EqualTo(c.State[0].TailShape[0] * c.State[0].TailShape[2]));
        Assert.That(c.PositionsPerRow, Is.False, "a growing cache has one length for the batch");
    }

    [Test]
    public void StateReadByAnotherNodeIsNotMarkedInPlace()
    {
        var model = Gpt2();
        var report = AttentionSwapper.Swap(model, AttentionRule.Parse("linear-elu"));
        var past = report.State[0].Past;
        // A second reader of the past: ORT's Identity may run after our operator has overwritten the shared buffer.
        model.Graph.Node.Add(new NodeProto { OpType = "Identity", Input = { past }, Output = { "copy" } });
        model.MetadataProps.Clear();
        ModelContract.Write(model, report);
        var c = ModelContract.Read(model);
        Assert.That(c.State.Single(s => s.Past == past).InPlace, Is.False);
        Assert.That(c.State.Where(s => s.Past != past).All(s => s.InPlace));
    }

    [TestCase("11-json-metadata-state-shared.onnx", "'onnx_attention.state' is not JSON")]
    [TestCase("12-argnull-metadata-state-null.onnx", "'onnx_attention.state' must be a JSON array of state tensors, got null")]
    [TestCase("13-keynotfound-metadata-state-empty-object.onnx", "'onnx_attention.state' entry 0 has no \"past\" name")]
    [TestCase("14-overflow-metadata-state-huge-shape.onnx", "'onnx_attention.state' entry 0 names past 'x', which is not an input of the graph")]
    public void HostileMetadataIsRefusedWithOneLine(string file, string expected)
    {
        var model = ModelFile.Load(Fixture("hostile", file));
        var e = Assert.Throws<ModelContractException>(() => ModelContract.Read(model))!;
        Assert.That(e.Message, Does.Contain(expected));
        Assert.That(e.Message, Does.Not.Contain("\n"));
        Assert.That(e, Is.InstanceOf<OnnxAttention.Graphs.Ir.GraphException>(), "the CLI prints it as a user error");
    }

    [Test]
    public void HostileMetadataIsRefusedAfterTheSwapAddsItsOwn()
    {
        // The swap does not look at a stray state key; reading the result must not pick either copy silently.
        var model = ModelFile.Load(Fixture("hostile", "14-overflow-metadata-state-huge-shape.onnx"));
        try
        {
            AttentionSwapper.Swap(model, AttentionRule.Parse("window:16"));
        }
        catch (Exception e) when (e is not AssertionException)
        {
            Assert.Pass($"the swap refuses it: {e.Message}");
        }
        Assert.That(() => ModelContract.Read(model), Throws.InstanceOf<ModelContractException>().With.Message.Contains("onnx_attention.state"));
    }

    private const string Past = "past_state.0", Present = "present_state.0";

    [TestCase("[{\"past\":\"P\",\"present\":\"Q\",\"shape\":[\"batch\",\"12\",\"-1\",\"64\"],\"type\":\"float\"}]", "dim 2 = '-1'; expected a number in [0, 2147483647]")]
    [TestCase("[{\"past\":\"P\",\"present\":\"Q\",\"shape\":[\"batch\",\"12\",\"99999999999\",\"64\"],\"type\":\"float\"}]", "dim 2 = '99999999999'")]
    [TestCase("[{\"past\":\"P\",\"present\":\"Q\",\"shape\":[\"batch\",\"65536\",\"65536\",\"64\"],\"type\":\"float\"}]", "holds more than 2147483647 elements per batch row")]
    [TestCase("[{\"past\":\"P\",\"present\":\"Q\",\"shape\":[\"batch\",\"12\",\"x\",\"64\"],\"type\":\"float\"}]", "dim 2 = 'x'")]
    [TestCase("[{\"past\":\"P\",\"present\":\"Q\",\"shape\":[\"batch\",12,64,64],\"type\":\"float\"}]", "shape dims must be strings")]
    [TestCase("[{\"past\":\"P\",\"present\":\"Q\",\"shape\":[\"batch\",\"12\",\"64\",\"64\"],\"type\":\"int64\"}]", "has type 'int64'; expected float, float16, bfloat16 or int8")]
    [TestCase("[{\"past\":\"P\",\"present\":\"Q\",\"shape\":[\"batch\",\"12\",\"64\",\"64\"],\"type\":\"1\"}]", "has type '1'")]
    [TestCase("[{\"past\":\"P\",\"present\":\"Q\",\"shape\":[\"batch\",\"12\",\"64\",\"64\"],\"type\":\"float\",\"grows\":4}]", "growing axis 4 is not a dim after the batch")]
    [TestCase("[{\"past\":\"P\",\"present\":\"Q\",\"shape\":[\"batch\",\"12\",\"64\",\"64\"],\"type\":\"float\",\"grows\":\"2\"}]", "\"grows\" must be an axis number")]
    [TestCase("[{\"past\":\"P\",\"present\":\"Q\",\"shape\":[\"batch\",\"12\",\"64\",\"64\"],\"type\":\"float\",\"in_place\":1}]", "\"in_place\" must be true or false")]
    [TestCase("[{\"past\":\"P\",\"present\":\"Q\",\"shape\":[],\"type\":\"float\"}]", "has rank 0")]
    [TestCase("[{\"past\":\"P\",\"present\":\"Q\",\"type\":\"float\"}]", "has no \"shape\" array")]
    [TestCase("[{\"past\":\"P\",\"present\":\"nope\",\"shape\":[\"batch\"],\"type\":\"float\"}]", "names present 'nope', which is not an output of the graph")]
    [TestCase("[{\"past\":\"P\",\"present\":\"Q\",\"shape\":[\"batch\"],\"type\":\"float\"},{\"past\":\"P\",\"present\":\"Q\",\"shape\":[\"batch\"],\"type\":\"float\"}]", "names 'past_state.0' or 'present_state.0' a second time")]
    [TestCase("[1]", "entry 0 must be an object, got number")]
    [TestCase("[[[[[[[[[[[]]]]]]]]]]]", "is not JSON")]
    public void MalformedStateIsRefused(string json, string expected)
    {
        var model = Swapped("linear-elu");
        model.MetadataProps.Single(p => p.Key == ModelContract.StateKey).Value = json.Replace("\"P\"", $"\"{Past}\"").Replace("\"Q\"", $"\"{Present}\"");
        var e = Assert.Throws<ModelContractException>(() => ModelContract.Read(model))!;
        Assert.That(e.Message, Does.Contain(expected).And.Contain("onnx_attention.state"));
    }

    [TestCase("onnx_attention.positions", "sideways", "metadata 'onnx_attention.positions' is 'sideways'; expected per_row or shared")]
    [TestCase("onnx_attention.layers", "-2", "metadata 'onnx_attention.layers' is '-2'; expected a non-negative integer")]
    [TestCase("onnx_attention.rule", "", "metadata 'onnx_attention.rule' is missing or empty")]
    public void MalformedKeysAreRefused(string key, string value, string expected)
    {
        var model = Swapped("linear-elu");
        model.MetadataProps.Single(p => p.Key == key).Value = value;
        Assert.That(() => ModelContract.Read(model), Throws.InstanceOf<ModelContractException>().With.Message.EqualTo(expected));
    }

    [Test]
    public void DuplicatedKeyIsRefused()
    {
        var model = Swapped("linear-elu");
        model.MetadataProps.Add(new StringStringEntryProto { Key = ModelContract.PositionsKey, Value = "per_row" });
        Assert.That(() => ModelContract.Read(model), Throws.InstanceOf<ModelContractException>()
            .With.Message.EqualTo("metadata 'onnx_attention.positions' appears more than once"));
    }

    [Test]
    public void UnswappedModelIsRefused() =>
        Assert.That(() => ModelContract.Read(Gpt2()), Throws.InstanceOf<ModelContractException>().With.Message.Contains("swap it first"));

    [Test]
    public void ContractWithoutInPlaceReadsAsTwoBuffers()
    {
        // Models converted before "in_place" was recorded still load; their state keeps two buffers.
        var model = Swapped("linear-elu");
        var state = model.MetadataProps.Single(p => p.Key == ModelContract.StateKey);
        state.Value = state.Value.Replace(",\"in_place\":true", "");
        Assert.That(ModelContract.Read(model).State.All(s => !s.InPlace));
    }

    [Test]
    public void BatchWhoseStateOutgrowsAnArrayIsRefused()
    {
        var s = new StateEntry("p", "q", TensorProto.Types.DataType.Float, [1 << 15, 1 << 15]);
        Assert.That(s.ElementsFor(1), Is.EqualTo(1 << 30));
        Assert.That(() => s.ElementsFor(4), Throws.InstanceOf<ModelContractException>().With.Message.Contains("state 'p' would hold 4294967296 elements"));
    }
}
