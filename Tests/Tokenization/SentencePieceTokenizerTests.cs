using NUnit.Framework;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Host.Tokenization;
using OnnxAttention.Tests.Support;
using static OnnxAttention.Tests.Tokenization.SentencePieceModelFile;

namespace OnnxAttention.Tests.Tokenization;

/// <summary>
/// The SentencePiece path of <see cref="TokenizerLoader"/> on small model files written by the test (Llama layout:
/// &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, 256 byte pieces, then words), in BPE and unigram form.
/// </summary>
[TestFixture]
[NonParallelizable] // redirects Console
public class SentencePieceTokenizerTests
{
    private const string Space = "\u2581";

    // BPE merges need every intermediate piece; the scores order the merges (higher first), as in Llama's model.
    private static readonly string[] Words =
    [
        Space, "h", "e", "l", "o", "w", "r", "d",
        "he", "ll", "hell", "hello", Space + "hello",
        "wo", "wor", "worl", "world", Space + "world",
    ];

    private string _dir = "";

    private static int Id(string piece) => FirstNormalId + Array.IndexOf(Words, piece);

    private string Write(string name, ModelType type, int fillerBeforeWorld = 0, bool byteFallback = true)
    {
        // Unigram scores are log probabilities: longer pieces more likely, so whole words win over their parts.
        var normal = Words.Select((w, i) => new Piece(w, type == ModelType.Bpe ? -i : -10f / w.Length)).ToList();
        if (fillerBeforeWorld > 0)
        {
            // Pushes the "world" pieces past the default model's vocabulary (512).
            var at = Array.IndexOf(Words, "wo");
            normal.InsertRange(at, Enumerable.Range(0, fillerBeforeWorld).Select(i => new Piece($"~{i}~", -1000 - i)));
        }
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, Serialize(LlamaLayout(normal), type, byteFallback));
        return path;
    }

    [SetUp]
    public void MakeFolder()
    {
        _dir = Path.Combine(Path.GetTempPath(), "onnx-attention-spm", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void Clean() => Directory.Delete(_dir, recursive: true);

    [TestCase(ModelType.Bpe, true)]
    [TestCase(ModelType.Unigram, false)]
    public void KnownPiecesGetTheirIdsAndDecodeBack(ModelType type, bool byteFallback)
    {
        var tokenizer = TokenizerLoader.Load(Write("tok.model", type, byteFallback: byteFallback));
        var ids = TokenizerLoader.Encode(tokenizer, "hello world", modelVocab: 512);
        Assert.That(ids, Is.EqualTo(new[] { 1, Id(Space + "hello"), Id(Space + "world") }), "<s> (id 1), then one piece per word");
        Assert.That(Id(Space + "hello"), Is.EqualTo(271), "the id the file's layout gives: 3 specials + 256 bytes + 12 pieces before it");
        Assert.That(tokenizer.Decode(ids), Is.EqualTo("hello world"));
    }

    [Test]
    public void TextOutsideThePiecesFallsBackToBytesAndRoundTrips()
    {
        var tokenizer = TokenizerLoader.Load(Write("tok.model", ModelType.Bpe));
        // "é" is not a piece: UTF-8 C3 A9, as the byte pieces <0xC3> <0xA9> (ids 3 + byte).
        var ids = TokenizerLoader.Encode(tokenizer, "hé world", modelVocab: 512);
        Assert.That(ids, Is.EqualTo(new[] { 1, Id(Space), Id("h"), 3 + 0xC3, 3 + 0xA9, Id(Space + "world") }));
        Assert.That(tokenizer.Decode(ids), Is.EqualTo("hé world"));
        foreach (var text in new[] { "hello", "world hello", "dew 42 €" })
        {
            Assert.That(tokenizer.Decode(TokenizerLoader.Encode(tokenizer, text, 512)), Is.EqualTo(text), text);
        }
    }

    [Test]
    public void AUnigramModelWithByteFallbackIsRefusedRatherThanMisread()
    {
        // Microsoft.ML.Tokenizers 2.0.1 encodes its byte pieces as byte + 258, not as the ids of the <0xNN> pieces.
        var e = Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(Write("uni.model", ModelType.Unigram)));
        Assert.That(e!.Message, Does.Contain("unigram").And.Contain("byte fallback"));
    }

    [Test]
    public void IdsPastTheModelsVocabularyAreRefused()
    {
        var tokenizer = TokenizerLoader.Load(Write("big.model", ModelType.Bpe, fillerBeforeWorld: 300));
        Assert.That(TokenizerLoader.Encode(tokenizer, "hello", 512), Is.EqualTo(new[] { 1, Id(Space + "hello") }));
        var e = Assert.Throws<ArgumentException>(() => TokenizerLoader.Encode(tokenizer, "hello world", 512));
        Assert.That(e!.Message, Does.Contain("outside the model's vocabulary [0, 512)"));
    }

    [Test]
    public void AFileThatIsNotASentencePieceModelIsExplained()
    {
        var path = Path.Combine(_dir, "broken.model");
        File.WriteAllBytes(path, [0xFF, 0xFF, 0xFF, 0x01]);
        var e = Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(path));
        Assert.That(e!.Message, Does.Contain("broken.model").And.Contain("SentencePiece"));
    }

    private static (int Code, string Out, string Err) Cli(params string[] args) => CommandLineRun.Invoke(GenerateCommand.Create(), args);

    [Test]
    public void GenerateEncodesTheTextWithTheModelFile()
    {
        var (code, output, error) = Cli("--tokenizer", Write("tok.model", ModelType.Bpe), "--text", "hello world", "--max-tokens", "4");
        Assert.That(code, Is.Zero, error);
        Assert.That(output, Does.Contain($"prompt: 1 {Id(Space + "hello")} {Id(Space + "world")}"));
    }

    [Test]
    public void GenerateRefusesTextWhoseIdsTheModelCannotRead()
    {
        var (code, _, error) = Cli("--tokenizer", Write("big.model", ModelType.Bpe, fillerBeforeWorld: 300), "--text", "hello world", "--max-tokens", "4");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("error:").And.Contain("outside the model's vocabulary [0, 512)"));
    }
}
