namespace OnnxAttention.Graphs.Decoders;

/// <summary>Sizes of the demo decoder built by <see cref="TinyLinearDecoderGraph"/>.</summary>
public sealed record TinyDecoderConfig(
    int Vocab = 256,
    int Hidden = 64,
    int Layers = 2,
    int QueryHeads = 4,
    int KvHeads = 2,
    int FeedForward = 128,
    int Seed = 2026)
{
    public int HeadDim => Hidden / QueryHeads;

    public void Validate()
    {
        if (Hidden % QueryHeads != 0 || QueryHeads % KvHeads != 0 || Vocab < 2 || Layers < 1)
        {
            throw new ArgumentException($"inconsistent decoder sizes: {this}");
        }
    }
}
