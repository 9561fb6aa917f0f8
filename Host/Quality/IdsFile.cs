using Google.Protobuf;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Tokenization;

namespace OnnxAttention.Host.Quality;

/// <summary>Token ids [rows, seq] for teacher-forced runs: an int64 TensorProto, or a text cut into rows.</summary>
public static class IdsFile
{
    /// <summary>The byte-level tokenizer's name: a token is one byte of the UTF-8 text.</summary>
    public const string Bytes = "bytes";

    /// <summary>
    /// Reads an int64 TensorProto [batch, seq]; <paramref name="option"/> names it in messages. The file is untrusted:
    /// <see cref="IdsReader"/> reads only a regular file of bounded size and checks dims and data before using them.
    /// </summary>
    public static (long[] Ids, int Rows, int Seq) Read(string path, string option)
    {
        var ids = IdsReader.Read(path, option);
        return (ids.Values, ids.Batch, ids.Sequence);
    }

    /// <summary>Writes ids [rows, seq] as an int64 TensorProto.</summary>
    public static void Write(string path, long[] ids, int rows) =>
        File.WriteAllBytes(path, Tensors.Int64("input_ids", ids, rows, ids.Length / rows).ToByteArray());

    /// <summary>
    /// A text file encoded by <paramref name="tokenizer"/> (<see cref="Bytes"/> or a tokenizer path as
    /// <see cref="TokenizerLoader"/> reads), cut into consecutive rows of <paramref name="seq"/> tokens (the rest is
    /// dropped); with <paramref name="maxRows"/> > 0, that many of those rows, evenly spaced.
    /// </summary>
    public static (long[] Ids, int Rows, int Seq) FromText(string path, string tokenizer, int seq, int maxRows, int vocab)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"--text '{path}' does not exist");
        if (seq < 1) throw new ArgumentException($"--seq must be >= 1, got {seq}");
        if (maxRows < 0) throw new ArgumentException($"--rows must be >= 0 (0: all), got {maxRows}");
        var text = File.ReadAllText(path);
        IReadOnlyList<int> tokens = tokenizer == Bytes
            ? System.Text.Encoding.UTF8.GetBytes(text).Select(b => (int)b).ToArray()
            : TokenizerLoader.Encode(TokenizerLoader.Load(tokenizer), text, vocab);
        var bad = tokens.FirstOrDefault(t => t >= vocab, -1);
        if (bad >= 0) throw new ArgumentException($"--text encodes to id {bad}, outside the model's vocabulary [0, {vocab})");
        var available = tokens.Count / seq;
        if (available == 0) throw new ArgumentException($"--text '{path}' has {tokens.Count} tokens, fewer than one row of --seq {seq}");
        var rows = maxRows > 0 ? Math.Min(available, maxRows) : available;
        // Rows spread evenly over the text, so a few rows sample all of it rather than its beginning.
        var ids = new long[rows * seq];
        for (var r = 0; r < rows; r++)
        {
            var first = (int)((long)r * available / rows) * seq;
            for (var t = 0; t < seq; t++) ids[r * seq + t] = tokens[first + t];
        }
        return (ids, rows, seq);
    }

    /// <summary>Refuses ids outside [0, vocab): ONNX Gather would read a negative one from the end of the table.</summary>
    public static void CheckRange(long[] values, int seq, long? vocab, string option)
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] < 0 || values[i] >= (vocab ?? long.MaxValue))
            {
                throw new GraphException($"{option} holds token {values[i]} at row {i / seq}, position {i % seq}; token ids must be in [0, {(vocab is { } v ? v.ToString() : "vocab")})");
            }
        }
    }
}
