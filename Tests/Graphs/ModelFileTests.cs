using Google.Protobuf;
using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Tests.Graphs;

/// <summary>External data is read only from inside the model's folder; anything else is refused before reading.</summary>
[TestFixture]
public class ModelFileTests
{
    private string _dir = "";

    [SetUp]
    public void MakeFolder()
    {
        _dir = Path.Combine(Path.GetTempPath(), "onnx-attention-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void RemoveFolder() => Directory.Delete(_dir, recursive: true);

    private string ModelWithExternalWeight(string location, long offset = 0, long? length = null)
    {
        var weight = new TensorProto { Name = "w", DataType = (int)TensorProto.Types.DataType.Float, DataLocation = TensorProto.Types.DataLocation.External };
        weight.Dims.Add(3);
        weight.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        weight.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString() });
        if (length is { } l) weight.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = l.ToString() });
        var model = new ModelBuilder()
            .Input("x", TensorProto.Types.DataType.Float, 3)
            .Initializer(weight)
            .Node("Add", ["x", "w"], ["y"])
            .Output("y", TensorProto.Types.DataType.Float, 3)
            .Build();
        var path = Path.Combine(_dir, "model.onnx");
        File.WriteAllBytes(path, model.ToByteArray());
        return path;
    }

    [Test]
    public void LoadsExternalDataFromTheModelsFolder()
    {
        var bytes = new byte[16];
        BitConverter.GetBytes(1.5f).CopyTo(bytes, 4);
        BitConverter.GetBytes(2.5f).CopyTo(bytes, 8);
        BitConverter.GetBytes(3.5f).CopyTo(bytes, 12);
        File.WriteAllBytes(Path.Combine(_dir, "weights.bin"), bytes);
        var model = ModelFile.Load(ModelWithExternalWeight("weights.bin", offset: 4, length: 12));
        Assert.That(Tensors.ToFloatArray(model.Graph.Initializer[0]), Is.EqualTo(new[] { 1.5f, 2.5f, 3.5f }));
    }

    [TestCase("../outside.bin")]
    [TestCase("sub/../../outside.bin")]
    public void RefusesLocationsThatLeaveTheFolder(string location)
    {
        File.WriteAllBytes(Path.Combine(Path.GetDirectoryName(_dir)!, "outside.bin"), new byte[12]);
        var e = Assert.Throws<GraphException>(() => ModelFile.Load(ModelWithExternalWeight(location)));
        Assert.That(e!.Message, Does.Contain("leaves the model's folder"));
    }

    [Test]
    public void RefusesAbsoluteLocations()
    {
        var e = Assert.Throws<GraphException>(() => ModelFile.Load(ModelWithExternalWeight("/etc/passwd")));
        Assert.That(e!.Message, Does.Contain("is absolute"));
    }

    [Test]
    public void RefusesSymlinksThatPointOutside()
    {
        var outside = Path.Combine(Path.GetDirectoryName(_dir)!, $"target-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(outside, new byte[12]);
        File.CreateSymbolicLink(Path.Combine(_dir, "link.bin"), outside);
        try
        {
            var e = Assert.Throws<GraphException>(() => ModelFile.Load(ModelWithExternalWeight("link.bin")));
            Assert.That(e!.Message, Does.Contain("leaves the model's folder"));
        }
        finally
        {
            File.Delete(outside);
        }
    }

    [Test]
    public void RefusesARangeBeyondTheFile()
    {
        File.WriteAllBytes(Path.Combine(_dir, "short.bin"), new byte[8]);
        var e = Assert.Throws<GraphException>(() => ModelFile.Load(ModelWithExternalWeight("short.bin", offset: 0, length: 12)));
        Assert.That(e!.Message, Does.Contain("lies outside"));
    }

    [Test]
    public void RefusesGarbage()
    {
        var path = Path.Combine(_dir, "garbage.onnx");
        File.WriteAllBytes(path, [0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]);
        var e = Assert.Throws<GraphException>(() => ModelFile.Load(path));
        Assert.That(e!.Message, Does.Contain("is not a valid ONNX model"));
    }

    [Test]
    public void RefusesAMissingFile() =>
        Assert.That(Assert.Throws<GraphException>(() => ModelFile.Load(Path.Combine(_dir, "none.onnx")))!.Message, Does.Contain("does not exist"));
}

[TestFixture]
public class ModelChecksTests
{
    private const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;

    private static ModelProto WithInitializer(TensorProto t) => new ModelBuilder()
        .Input("x", F, 2).Initializer(t).Node("Add", ["x", t.Name], ["y"]).Output("y", F, 2).Build();

    [Test]
    public void AHugeDeclaredSizeWithLittleDataIsRefused()
    {
        var t = new TensorProto { Name = "w", DataType = (int)F, RawData = ByteString.CopyFrom(new byte[8]) };
        t.Dims.AddRange([1L << 30, 1L << 20]);
        var e = Assert.Throws<GraphException>(() => ModelChecks.Validate(WithInitializer(t)));
        Assert.That(e!.Message, Does.Contain("declares more than"));
    }

    [Test]
    public void DataThatDisagreesWithTheShapeIsRefused()
    {
        var t = new TensorProto { Name = "w", DataType = (int)F, RawData = ByteString.CopyFrom(new byte[12]) };
        t.Dims.Add(2);
        Assert.That(Assert.Throws<GraphException>(() => ModelChecks.Validate(WithInitializer(t)))!.Message, Does.Contain("declares 2 elements (8 bytes) but holds 12 bytes"));
    }

    [Test]
    public void AnUndefinedInputIsRefused()
    {
        var model = new ModelBuilder().Input("x", F, 2).Node("Add", ["x", "ghost"], ["y"]).Output("y", F, 2).Build();
        Assert.That(Assert.Throws<GraphException>(() => ModelChecks.Validate(model))!.Message, Does.Contain("reads 'ghost', which nothing defines"));
    }

    [Test]
    public void ACycleIsRefused()
    {
        var model = new ModelBuilder().Input("x", F, 2)
            .Node("Add", ["x", "b"], ["a"], name: "one").Node("Relu", ["a"], ["b"], name: "two").Output("b", F, 2).Build();
        Assert.That(Assert.Throws<GraphException>(() => ModelChecks.Validate(model))!.Message, Does.Contain("cycle"));
    }

    [Test]
    public void TheFixturesPass()
    {
        var dirs = Directory.GetDirectories(Path.Combine(OnnxAttention.Tests.Support.TestPaths.Shared, "fixtures", "exported-decoders"));
        // At least one, so the loop cannot pass by checking nothing; CI may carry more fixtures than a checkout.
        Assert.That(dirs, Is.Not.Empty, "exported decoder fixtures");
        foreach (var dir in dirs)
        {
            Assert.DoesNotThrow(() => ModelFile.Load(Path.Combine(dir, "model.onnx")));
        }
    }
}
