using NUnit.Framework;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Host.Tokenization;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Tokenization;

/// <summary>Tokenizers through Microsoft.ML.Tokenizers, on a small BPE vocabulary written by the test.</summary>
[TestFixture]
[NonParallelizable] // redirects Console
public class TokenizerTests
{
    private string _dir = "";

    [SetUp]
    public void WriteTokenizer()
    {
        _dir = Path.Combine(Path.GetTempPath(), "onnx-attention-tok", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        string[] tokens = ["h", "e", "l", "o", "w", "r", "d", "he", "ll", "hell", "hello", "wo", "wor", "worl", "world"];
        File.WriteAllText(Path.Combine(_dir, "vocab.json"), "{" + string.Join(",", tokens.Select((t, i) => $"\"{t}\":{i}")) + "}");
        File.WriteAllLines(Path.Combine(_dir, "merges.txt"), ["#version: 0.2", "h e", "l l", "he ll", "hell o", "w o", "wo r", "wor l", "worl d"]);
    }

    [TearDown]
    public void Clean() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void EncodesWithTheMergesAndDecodesBack()
    {
        var tokenizer = TokenizerLoader.Load(_dir);
        var ids = TokenizerLoader.Encode(tokenizer, "hello", modelVocab: 512);
        Assert.That(ids, Is.EqualTo(new[] { 10 }));
        Assert.That(tokenizer.Decode(TokenizerLoader.Encode(tokenizer, "world", 512)), Is.EqualTo("world"));
    }

    [Test]
    public void RefusesIdsTheModelCannotRead()
    {
        var tokenizer = TokenizerLoader.Load(_dir);
        var e = Assert.Throws<ArgumentException>(() => TokenizerLoader.Encode(tokenizer, "world", modelVocab: 10));
        Assert.That(e!.Message, Does.Contain("outside the model's vocabulary [0, 10)"));
    }

    [Test]
    public void AFolderWithoutVocabularyIsExplained()
    {
        File.Delete(Path.Combine(_dir, "merges.txt"));
        Assert.That(Assert.Throws<FileNotFoundException>(() => TokenizerLoader.Load(_dir))!.Message, Does.Contain("needs vocab.json and merges.txt"));
    }

    [Test]
    public void GenerateTakesTextAndPrintsText()
    {
        var (code, output, _) = CommandLineRun.Invoke(GenerateCommand.Create(), "--tokenizer", _dir, "--text", "hello world", "--max-tokens", "6");
        Assert.That(code, Is.Zero, output);
        Assert.That(output, Does.Contain("prompt: 10 14"));
    }
}
