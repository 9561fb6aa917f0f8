namespace OnnxAttention.Graphs.Building;

/// <summary>
/// Size and seed of a Llama written in the onnxruntime-genai model builder's form (<see cref="GenaiLlamaModel"/>).
/// <see cref="ContextLength"/> sizes the rotary cos/sin caches, so it bounds the positions the model can take.
/// </summary>
public sealed record GenaiLlamaConfig(
    int Vocab,
    int Hidden,
    int Intermediate,
    int Layers,
    int Heads,
    int KvHeads,
    int ContextLength,
    int Seed = 1234,
    double RopeTheta = 10000.0,
    float RmsEpsilon = 1e-6f)
{
    public int HeadSize => Hidden / Heads;

    public int KvWidth => KvHeads * HeadSize;

    /// <summary>Weights, embeddings and classifier included (the cos/sin caches are not parameters).</summary>
    public long Parameters =>
        2L * Vocab * Hidden + Hidden
        + Layers * (2L * Hidden + (long)Hidden * (Hidden + 2 * KvWidth) + (long)Hidden * Hidden + 3L * Hidden * Intermediate);

    /// <summary>A few hundred thousand parameters: for tests (generates in milliseconds).</summary>
    public static GenaiLlamaConfig Tiny(int contextLength = 4096) => new(256, 64, 128, 2, 4, 2, contextLength);

    /// <summary>About 100M parameters: 12 layers, hidden 768, 12 query and 4 KV heads (head size 64), vocabulary 16384.</summary>
    public static GenaiLlamaConfig Bench100M(int contextLength = 65536 + 1024) => new(16384, 768, 2048, 12, 12, 4, contextLength);

    public void Validate()
    {
        if (Vocab <= 0 || Hidden <= 0 || Intermediate <= 0 || Layers <= 0 || Heads <= 0 || KvHeads <= 0 || ContextLength <= 0)
        {
            throw new ArgumentException("every size of the model must be positive");
        }
        if (Hidden % Heads != 0 || Heads % KvHeads != 0 || HeadSize % 2 != 0)
        {
            throw new ArgumentException($"hidden {Hidden} with {Heads} query and {KvHeads} KV heads does not give an even head size shared by groups");
        }
    }
}
