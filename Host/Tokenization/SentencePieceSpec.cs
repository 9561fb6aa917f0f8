using Google.Protobuf;

namespace OnnxAttention.Host.Tokenization;

/// <summary>
/// The two settings of a SentencePiece model file that decide whether Microsoft.ML.Tokenizers reads it correctly,
/// read straight from the protobuf (ModelProto.trainer_spec = 2; TrainerSpec.model_type = 3, byte_fallback = 35).
/// </summary>
public sealed record SentencePieceSpec(int ModelType, bool ByteFallback)
{
    public const int Unigram = 1, Bpe = 2;

    /// <summary>Defaults as in sentencepiece_model.proto: unigram, no byte fallback.</summary>
    public static SentencePieceSpec Read(byte[] model)
    {
        var input = new CodedInputStream(model);
        var spec = new SentencePieceSpec(Unigram, false);
        while (input.ReadTag() is var tag and not 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == 2 && WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
            {
                spec = ReadTrainerSpec(input.ReadBytes().ToByteArray(), spec);
            }
            else
            {
                input.SkipLastField();
            }
        }
        return spec;
    }

    private static SentencePieceSpec ReadTrainerSpec(byte[] trainer, SentencePieceSpec spec)
    {
        var input = new CodedInputStream(trainer);
        while (input.ReadTag() is var tag and not 0)
        {
            var varint = WireFormat.GetTagWireType(tag) == WireFormat.WireType.Varint;
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 3 when varint: spec = spec with { ModelType = input.ReadEnum() }; break;
                case 35 when varint: spec = spec with { ByteFallback = input.ReadBool() }; break;
                default: input.SkipLastField(); break;
            }
        }
        return spec;
    }
}
