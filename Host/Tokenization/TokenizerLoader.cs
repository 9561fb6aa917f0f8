using Microsoft.ML.Tokenizers;

namespace OnnxAttention.Host.Tokenization;

/// <summary>
/// Loads a model's tokenizer with Microsoft.ML.Tokenizers: a folder with vocab.json and merges.txt (BPE, the
/// GPT-2 family) or a SentencePiece .model file (Llama family).
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
            using var stream = File.OpenRead(path);
            return LlamaTokenizer.Create(stream);
        }
        throw new InvalidDataException($"tokenizer '{path}': expected a folder with vocab.json and merges.txt, or a SentencePiece .model file");
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
