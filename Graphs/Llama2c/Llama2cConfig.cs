namespace OnnxAttention.Graphs.Llama2c;

/// <summary>The 7-int header of a llama2.c checkpoint.</summary>
public sealed record Llama2cConfig(int Dim, int HiddenDim, int Layers, int Heads, int KvHeads, int Vocab, int MaxSequence, bool SharedClassifier)
{
    public int HeadSize => Dim / Heads;

    public int KvDim => KvHeads * HeadSize;

    public void Validate()
    {
        if (Dim <= 0 || HiddenDim <= 0 || Layers <= 0 || Heads <= 0 || KvHeads <= 0 || Vocab <= 0 || MaxSequence <= 0)
        {
            throw new InvalidDataException($"llama2.c header has a non-positive size: {this}");
        }
        if (Dim % Heads != 0 || Heads % KvHeads != 0 || HeadSize % 2 != 0)
        {
            throw new InvalidDataException($"llama2.c header sizes are inconsistent (dim % heads, heads % kv_heads, even head size): {this}");
        }
        if (Dim > 1 << 16 || HiddenDim > 1 << 18 || Layers > 1024 || Vocab > 1 << 20 || MaxSequence > 1 << 20)
        {
            throw new InvalidDataException($"llama2.c header sizes are implausibly large: {this}");
        }
    }
}
