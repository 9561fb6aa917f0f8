using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Diagnostics;
using OnnxAttention.Host.Generation;

namespace OnnxAttention.Tests.Generation;

/// <summary>
/// Loading a model leaves garbage of about three times its size (the file's protobuf, the serialized copy ORT gets,
/// the swap's copies). The Host returns it once the session exists: without that the 100M-parameter Llama's process
/// held 1.7 GB resident after loading instead of 0.5 GB, until something ran an aggressive collection.
/// </summary>
[TestFixture]
[NonParallelizable]
public class DecoderLoadMemoryTests
{
    private string _dir = null!;

    [SetUp]
    public void Folder() => _dir = Directory.CreateTempSubdirectory("onnxattention-load-memory-").FullName;

    [TearDown]
    public void Clean() => Directory.Delete(_dir, recursive: true);

    /// <summary>A genai-form Llama of about 22M parameters (88 MB): above the size from which the Host compacts.</summary>
    private string WriteModel()
    {
        var path = Path.Combine(_dir, "model.onnx");
        ModelFile.Save(GenaiLlamaModel.Build(new GenaiLlamaConfig(16384, 512, 1024, 2, 8, 4, 1024)), path);
        return path;
    }

    [Test]
    public void LoadingABigModelLeavesNeitherItsProtobufNorItsPagesBehind()
    {
        var path = WriteModel();
        var bytes = new FileInfo(path).Length;
        Assert.That(bytes, Is.GreaterThan(DecoderModel.CompactAfterLoadBytes), "the test model must be big enough for the Host to compact after it");
        ProcessMemory.Compact();
        var (heapBefore, residentBefore) = (GC.GetTotalMemory(forceFullCollection: false), ProcessMemory.Read().ResidentBytes);

        using var decoder = DecoderModel.Load(path, AttentionRule.Parse("linear-elu"), intraOpThreads: 1);

        // Read without a collection: what loading left on the managed heap, garbage included.
        var heapAdded = GC.GetTotalMemory(forceFullCollection: false) - heapBefore;
        var residentAdded = ProcessMemory.Read().ResidentBytes - residentBefore;
        Assert.That(heapAdded, Is.LessThan(bytes / 8), $"managed heap after loading a {bytes / 1e6:F0} MB model: +{heapAdded / 1e6:F0} MB");
        // ORT keeps one copy of the weights; the loading's copies must not stay resident.
        Assert.That(residentAdded, Is.LessThan(2 * bytes), $"resident after loading a {bytes / 1e6:F0} MB model: +{residentAdded / 1e6:F0} MB");
    }
}
