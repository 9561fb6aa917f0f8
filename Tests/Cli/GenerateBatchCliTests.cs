using NUnit.Framework;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Cli;

/// <summary>generate with several --prompt options: one batch, prompts of different lengths allowed by state-based rules.</summary>
[TestFixture]
[NonParallelizable] // redirects Console
public class GenerateBatchCliTests
{
    private static (int Code, string[] Lines, string Err) Generate(params string[] args)
    {
        var (code, output, error) = CommandLineRun.Invoke(GenerateCommand.Create(), ["--max-tokens", "6", .. args]);
        return (code, output.Split('\n').Select(l => l.TrimEnd()).ToArray(), error);
    }

    [TestCase("window:3")]
    [TestCase("segment:2")]
    public void PromptsOfDifferentLengthsGenerateWhatEachGeneratesAlone(string rule)
    {
        string[] prompts = ["1 403 407 261 378", "1 284"];
        var (code, lines, error) = Generate(["--attention", rule, "--prompt", prompts[0], "--prompt", prompts[1]]);
        Assert.That(code, Is.Zero, error);
        Assert.That(lines, Does.Contain($"prompt 0: {prompts[0]}").And.Contain($"prompt 1: {prompts[1]}"));
        for (var r = 0; r < prompts.Length; r++)
        {
            var (aloneCode, alone, aloneError) = Generate(["--attention", rule, "--prompt", prompts[r]]);
            Assert.That(aloneCode, Is.Zero, aloneError);
            // Alone, the tokens stream on the line after the prompt.
            var tokens = alone[Array.IndexOf(alone, $"prompt: {prompts[r]}") + 1];
            Assert.That(tokens.Split(' '), Has.Length.EqualTo(6));
            Assert.That(lines, Does.Contain($"[{r}] {tokens}"), $"row {r}");
        }
        Assert.That(string.Join("\n", lines), Does.Contain("prefill: 7 tokens"));
    }

    [Test]
    public void TheSoftmaxRuleExplainsWhyItCannotMixLengths()
    {
        var (code, _, error) = Generate(["--attention", "softmax", "--prompt", "1 2 3", "--prompt", "1 2"]);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("different lengths (3, 2)").And.Contain("'softmax' rule"));
    }
}
