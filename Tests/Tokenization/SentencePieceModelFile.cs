using Google.Protobuf;

namespace OnnxAttention.Tests.Tokenization;

/// <summary>
/// Writes a SentencePiece model file (sentencepiece.ModelProto) by hand with protobuf's wire format, so the
/// SentencePiece path of the tokenizer loader can be tested without a trained model in the repository. Field numbers
/// follow sentencepiece_model.proto: ModelProto pieces = 1, trainer_spec = 2, normalizer_spec = 3; SentencePiece
/// piece = 1, score = 2, type = 3; TrainerSpec model_type = 3, vocab_size = 4, byte_fallback = 35, unk_id = 40,
/// bos_id = 41, eos_id = 42, pad_id = 43; NormalizerSpec name = 1, add_dummy_prefix = 3,
/// remove_extra_whitespaces = 4, escape_whitespaces = 5.
/// </summary>
public static class SentencePieceModelFile
{
    public enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

    public enum ModelType { Unigram = 1, Bpe = 2 }

    public sealed record Piece(string Text, float Score, PieceType Type = PieceType.Normal);

    /// <summary>
    /// The Llama layout: &lt;unk&gt; = 0, &lt;s&gt; = 1, &lt;/s&gt; = 2, the 256 byte pieces &lt;0x00&gt; .. &lt;0xFF&gt;
    /// (ids 3 .. 258), then <paramref name="normal"/> in order from id 259.
    /// </summary>
    public static List<Piece> LlamaLayout(IEnumerable<Piece> normal)
    {
        var pieces = new List<Piece> { new("<unk>", 0, PieceType.Unknown), new("<s>", 0, PieceType.Control), new("</s>", 0, PieceType.Control) };
        pieces.AddRange(Enumerable.Range(0, 256).Select(b => new Piece($"<0x{b:X2}>", 0, PieceType.Byte)));
        pieces.AddRange(normal);
        return pieces;
    }

    public const int FirstNormalId = 259;

    public static byte[] Serialize(IReadOnlyList<Piece> pieces, ModelType type, bool byteFallback)
    {
        return Message(o =>
        {
            foreach (var p in pieces)
            {
                o.WriteTag(1, WireFormat.WireType.LengthDelimited);
                o.WriteBytes(ByteString.CopyFrom(Message(s =>
                {
                    s.WriteTag(1, WireFormat.WireType.LengthDelimited);
                    s.WriteString(p.Text);
                    s.WriteTag(2, WireFormat.WireType.Fixed32);
                    s.WriteFloat(p.Score);
                    s.WriteTag(3, WireFormat.WireType.Varint);
                    s.WriteInt32((int)p.Type);
                })));
            }
            o.WriteTag(2, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(ByteString.CopyFrom(Message(t =>
            {
                Varint(t, 3, (int)type);
                Varint(t, 4, pieces.Count);
                Varint(t, 35, byteFallback ? 1 : 0);
                Varint(t, 40, 0);
                Varint(t, 41, 1);
                Varint(t, 42, 2);
                Varint(t, 43, -1);
            })));
            o.WriteTag(3, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(ByteString.CopyFrom(Message(n =>
            {
                n.WriteTag(1, WireFormat.WireType.LengthDelimited);
                n.WriteString("identity");
                Varint(n, 3, 1);
                Varint(n, 4, 0);
                Varint(n, 5, 1);
            })));
        });
    }

    private static void Varint(CodedOutputStream o, int field, int value)
    {
        o.WriteTag(field, WireFormat.WireType.Varint);
        o.WriteInt32(value);
    }

    private static byte[] Message(Action<CodedOutputStream> write)
    {
        using var memory = new MemoryStream();
        using (var o = new CodedOutputStream(memory, leaveOpen: true))
        {
            write(o);
        }
        return memory.ToArray();
    }
}
