using Google.Protobuf;
using Microsoft.ML.Tokenizers;

namespace OnnxAttention.Host.Tokenization;

/// <summary>
/// Loads a model's tokenizer with Microsoft.ML.Tokenizers: a folder with vocab.json and merges.txt (BPE, the
/// GPT-2 family) or a SentencePiece .model file (BPE as in the Llama family, or unigram).
/// </summary>
public static class TokenizerLoader
{
    public static Tokenizer Load(string path)
    {
        if (Directory.Exists(path))
        {
            var vocab = Path.Combine(path, "vocab.json");
            var merges = Path.Combine(path, "merges.txt");
            if (!File.Exists(vocab) || !File.Exists(merges))
            {
                throw new FileNotFoundException($"tokenizer folder '{path}' needs vocab.json and merges.txt (a BPE tokenizer)");
            }
            return BpeTokenizer.Create(vocab, merges);
        }
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"tokenizer '{path}' does not exist", path);
        }
        if (path.EndsWith(".model", StringComparison.OrdinalIgnoreCase))
        {
            return LoadSentencePiece(path);
        }
        throw new InvalidDataException($"tokenizer '{path}': expected a folder with vocab.json and merges.txt, or a SentencePiece .model file");
    }

    private static Tokenizer LoadSentencePiece(string path)
    {
        var bytes = File.ReadAllBytes(path);
        try
        {
            var spec = SentencePieceSpec.Read(bytes);
            if (spec.ModelType == SentencePieceSpec.Unigram && spec.ByteFallback)
            {
                // Seen with Microsoft.ML.Tokenizers 2.0.1: a unigram model's byte pieces come out as byte + 258
                // instead of the ids of the <0xNN> pieces, so the model would be fed other tokens than the text's.
                throw new InvalidDataException($"tokenizer '{path}': a unigram SentencePiece model with byte fallback is not supported " +
                    "(Microsoft.ML.Tokenizers gives its byte pieces wrong ids); BPE models (Llama's) and unigram models without byte fallback are");
            }
            // SentencePieceTokenizer reads BPE models (Llama's) and unigram ones; LlamaTokenizer only the former.
            // Like Llama, the encoding starts with <s>.
            using var stream = new MemoryStream(bytes, writable: false);
            return SentencePieceTokenizer.Create(stream, addBeginningOfSentence: true, addEndOfSentence: false);
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or ArgumentException or NotSupportedException)
        {
            throw new InvalidDataException($"tokenizer '{path}' is not a SentencePiece model this loader can read (BPE or unigram): {e.Message}", e);
        }
    }

    /// <summary>Refuses a tokenizer whose ids the model cannot read.</summary>
    public static IReadOnlyList<int> Encode(Tokenizer tokenizer, string text, int modelVocab)
    {
        var ids = tokenizer.EncodeToIds(text);
        var bad = ids.FirstOrDefault(i => i < 0 || i >= modelVocab, -1);
        if (bad != -1)
        {
            throw new ArgumentException($"the tokenizer produced id {bad}, outside the model's vocabulary [0, {modelVocab})");
        }
        if (ids.Count == 0)
        {
            throw new ArgumentException($"the text '{text}' encodes to no tokens");
        }
        return ids;
    }
}
