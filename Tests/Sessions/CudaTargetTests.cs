using Google.Protobuf;
using NUnit.Framework;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Sessions;

/// <summary>
/// <c>--ep cuda</c> where there is no CUDA: the tests run on the CPU build, which refuses it with one line naming the
/// GPU build, before any model work, for generate and logits alike; bad spellings are named.
/// </summary>
[TestFixture]
[NonParallelizable] // redirects Console
public class CudaTargetTests
{
    private static void AssertOneLineError(int code, string error, string expected)
    {
        Assert.That(code, Is.EqualTo(1), error);
        Assert.That(error.TrimEnd().Split('\n'), Has.Length.EqualTo(1), error);
        Assert.That(error, Does.StartWith("error: ").And.Contain(expected));
    }

    [TestCase("cpu", false, 0)]
    [TestCase("CUDA", true, 0)]
    [TestCase("cuda:3", true, 3)]
    public void ParsesTheProviderSpellings(string text, bool cuda, int device)
    {
        var target = ExecutionTarget.Parse(text);
        Assert.That((target.IsCuda, target.DeviceId), Is.EqualTo((cuda, device)));
    }

    [TestCase("tpu")]
    [TestCase("cuda:-1")]
    [TestCase("cuda:x")]
    public void RefusesOtherSpellingsNamingThem(string text) =>
        Assert.That(() => ExecutionTarget.Parse(text), Throws.ArgumentException.With.Message.Contains($"--ep '{text}'"));

    [Test]
    public void TheCpuBuildRefusesCudaSessionsNamingTheGpuBuild()
    {
        Assert.That(CudaBuild.Included, Is.False, "the tests run on the CPU build");
        Assert.That(() => DecoderModel.Default(AttentionRule.Parse("linear-elu"), 1, ExecutionTarget.Cuda()),
            Throws.InstanceOf<ExecutionProviderUnavailableException>().With.Message.Contains("-p:OnnxRuntimeFlavor=Gpu"));
    }

    [Test]
    public void GenerateWithCudaOnTheCpuBuildIsOneLine()
    {
        var (code, output, error) = CommandLineRun.Invoke(GenerateCommand.Create(), "--ep", "cuda", "--max-tokens", "2");
        AssertOneLineError(code, error, "--ep cuda:0 needs the GPU build");
        Assert.That(output, Does.Not.Contain("model:"), "refused before the model was loaded and reported");
    }

    [Test]
    public void LogitsWithCudaOnTheCpuBuildIsOneLineAndWritesNothing()
    {
        var dir = Directory.CreateTempSubdirectory("onnx-attention-ep").FullName;
        try
        {
            var ids = Path.Combine(dir, "ids.pb");
            File.WriteAllBytes(ids, Tensors.Int64("input_ids", [1, 2, 3], 1, 3).ToByteArray());
            var output = Path.Combine(dir, "logits.pb");
            var model = Path.Combine(TestPaths.Shared, "fixtures", "exported-decoders", "gpt2-eager-dynamo", "model.onnx");
            var (code, _, error) = CommandLineRun.Invoke(LogitsCommand.Create(),
                "--model", model, "--attention", "linear-elu", "--input-ids", ids, "--out", output, "--ep", "cuda:1");
            AssertOneLineError(code, error, "--ep cuda:1 needs the GPU build");
            Assert.That(File.Exists(output), Is.False);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void AnUnknownProviderIsNamedByGenerate()
    {
        var (code, _, error) = CommandLineRun.Invoke(GenerateCommand.Create(), "--ep", "rocm");
        AssertOneLineError(code, error, "--ep 'rocm' is not an execution provider");
    }
}
