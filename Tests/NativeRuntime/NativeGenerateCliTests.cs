using NUnit.Framework;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.NativeRuntime;

/// <summary><c>onnx-attention generate --ort-library ...</c> as a user runs it: the C-API path behind the CLI.</summary>
[TestFixture]
[NonParallelizable] // redirects Console
public class NativeGenerateCliTests
{
    private static (int Code, string Out, string Err) Generate(params string[] args) => CommandLineRun.Invoke(GenerateCommand.Create(), args);

    /// <summary>The line after "prompt: ...": the generated ids as printed while generating.</summary>
    private static string Tokens(string output)
    {
        var lines = output.Split('\n');
        var prompt = Array.FindIndex(lines, l => l.StartsWith("prompt: ", StringComparison.Ordinal));
        Assert.That(prompt, Is.GreaterThanOrEqualTo(0), output);
        return lines[prompt + 1].Trim();
    }

    [TestCase("linear-elu")]
    [TestCase("softmax")]
    public void GeneratesTheManagedBindingsTokensOnOrt129(string rule)
    {
        OrtCores.Require129();
        var managed = Generate("--attention", rule, "--max-tokens", "8", "--threads", "1");
        var native = Generate("--attention", rule, "--max-tokens", "8", "--threads", "1", "--ort-library", OrtCores.Ort129Library);
        Assert.That(managed.Code, Is.Zero, managed.Err);
        Assert.That(native.Code, Is.Zero, native.Err);
        Assert.That(native.Out, Does.Contain("runtime: ONNX Runtime 1.29.0 through its C API").And.Contain("state in Cpu memory"));
        Assert.That(native.Out, Does.Contain("decode: 8 tokens"));
        Assert.That(Tokens(native.Out).Split(' '), Has.Length.EqualTo(8));
        Assert.That(Tokens(native.Out), Is.EqualTo(Tokens(managed.Out)));
    }

    [Test]
    public void CudaWithAMissingPluginLibraryNamesIt()
    {
        OrtCores.Require129();
        var missing = Path.Combine(Path.GetTempPath(), "no-such-dir", "libonnxruntime_providers_cuda.so");
        var (code, _, error) = Generate("--max-tokens", "2", "--ort-library", OrtCores.Ort129Library, "--ep", "cuda", "--cuda-plugin", missing);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain($"error: execution provider library not found: {missing}"));
    }

    [Test]
    public void ClassicCudaOnTheCpuCoreSaysWhy()
    {
        OrtCores.Require129();
        var (code, _, error) = Generate("--max-tokens", "2", "--ort-library", OrtCores.Ort129Library, "--ep", "cuda");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("CUDA execution provider is not enabled in this build").And.Contain("--cuda-plugin"));
    }

    [Test]
    public void MissingOrtLibraryIsNamed()
    {
        var missing = Path.Combine(Path.GetTempPath(), "no-such-dir", "libonnxruntime.so");
        var (code, _, error) = Generate("--max-tokens", "2", "--ort-library", missing);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain($"error: ONNX Runtime library not found: {missing}"));
    }

    [Test]
    public void PromptsOfDifferentLengthsGiveTheManagedBindingsRows()
    {
        OrtCores.Require129();
        string[] args = ["--max-tokens", "4", "--threads", "1", "--attention", "window:3", "--prompt", "1 403 407 261 378", "--prompt", "1 284"];
        var native = Generate([.. args, "--ort-library", OrtCores.Ort129Library]);
        var managed = Generate(args);
        Assert.That(native.Code, Is.Zero, native.Err);
        Assert.That(managed.Code, Is.Zero, managed.Err);
        var Rows = (string output) => output.Split('\n').Where(l => l.StartsWith('[')).Select(l => l.Trim()).ToList();
        Assert.That(Rows(native.Out), Has.Count.EqualTo(2));
        Assert.That(Rows(native.Out)[1].Split(' '), Has.Length.EqualTo(5), "[1] and four tokens");
        Assert.That(Rows(native.Out), Is.EqualTo(Rows(managed.Out)));
    }

    [Test]
    public void PromptsOfDifferentLengthsWithTheSoftmaxRuleAreRefusedWithTheReason()
    {
        OrtCores.Require129();
        var (code, _, error) = Generate("--max-tokens", "2", "--attention", "softmax", "--ort-library", OrtCores.Ort129Library, "--prompt", "1 2 3", "--prompt", "1 2");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("different lengths (3, 2)").And.Contain("'softmax' rule"));
    }

    [Test]
    public void RepeatedPromptsAndCopiesGiveOneRowEach()
    {
        OrtCores.Require129();
        var (code, output, error) = Generate("--max-tokens", "3", "--threads", "1", "--ort-library", OrtCores.Ort129Library,
            "--prompt", "1 403 407", "--prompt", "1 296 285", "--batch", "2");
        Assert.That(code, Is.Zero, error);
        Assert.That(output, Does.Contain("prompt 0: 1 403 407").And.Contain("prompt 1: 1 296 285"));
        Assert.That(output, Does.Contain("[3] ").And.Contain("decode: 12 tokens"));
    }

    [Test]
    public void EpWithoutOrtLibraryIsRefused()
    {
        var (code, _, error) = Generate("--max-tokens", "2", "--ep", "cuda");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("--ep and --cuda-plugin need --ort-library"));
    }
}
