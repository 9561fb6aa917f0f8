using OnnxAttention.Operators.LinearAttention;

namespace OnnxAttention.Operators.Cuda.Specializations;

/// <summary>
/// linear_attention_prefill.cu (chunked, update_rule=linear). Launch: grid <see cref="Grid"/>, 128 threads, dynamic
/// shared memory <see cref="DynamicSharedBytes"/> (above 48 KiB the host raises the function's limit first).
/// </summary>
public sealed record LinearAttentionPrefillSpecialization : KernelSpecialization
{
    public const int Threads = 128;

    public LinearAttentionPrefillSpecialization(int headDim, int valueDim, int group, FeatureMap featureMap, bool normalize,
        CudaActivation activation, int? chunk = null, int? blockColumns = null)
    {
        RequireRange(nameof(headDim), headDim, 1, 256);
        RequireRange(nameof(valueDim), valueDim, 1, 4096);
        RequireRange(nameof(group), group, 1, 64);
        var c = chunk ?? (activation == CudaActivation.Float32 ? 32 : 64);
        if (c is not (16 or 32 or 64))
        {
            throw new ArgumentOutOfRangeException(nameof(chunk), c, "chunk must be 16, 32 or 64");
        }
        // The kernel takes 16, 32, 64 or 128 columns; a narrower d_v leaves part of its one column block idle.
        var columns = blockColumns ?? (valueDim <= 16 ? 16 : valueDim <= 32 ? 32 : 64);
        if (columns is not (16 or 32 or 64 or 128) || c % (Threads / columns) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(blockColumns), columns,
                "block columns must be 16, 32, 64 or 128, and the chunk a multiple of 128 / block columns");
        }
        (HeadDim, ValueDim, Group, FeatureMap, Normalize, Activation, Chunk, BlockColumns) =
            (headDim, valueDim, group, featureMap, normalize, activation, c, columns);
    }

    public int HeadDim { get; }
    public int ValueDim { get; }
    public int Group { get; }
    public FeatureMap FeatureMap { get; }
    public bool Normalize { get; }
    public CudaActivation Activation { get; }
    /// <summary>Tokens per chunk (CHUNK).</summary>
    public int Chunk { get; }
    /// <summary>Value columns per block (BLOCK_COLS).</summary>
    public int BlockColumns { get; }

    public override KernelSource Source => KernelSources.LinearAttentionPrefill;

    public override int ThreadsPerBlock => Threads;

    /// <summary>The kernel's shared layout: 16-byte-aligned arrays, see kOff* in linear_attention_prefill.cu.</summary>
    public override int DynamicSharedBytes
    {
        get
        {
            static int Align(int bytes) => RoundUp(bytes, 16);
            var float32 = Activation == CudaActivation.Float32;
            var act = float32 ? 4 : 2;
            var keyPad = float32 ? HeadDim : RoundUp(HeadDim, 16);
            var qkStride = float32 ? HeadDim + 1 : keyPad + 8;
            var vtStride = float32 ? Chunk + 1 : Chunk + 8;
            return Align(4 * HeadDim * BlockColumns)       // state tile
                + Align(4 * HeadDim)                        // nu
                + Align(4 * (Chunk + 1))                    // gamma powers
                + 5 * Align(4 * Chunk)                      // denominators, q/k/A row scales, state-update weights
                + Align(4 * Chunk * (Chunk + 8))            // A
                + Align(4 * Chunk * (BlockColumns + 8))     // intra-chunk result
                + Align(4 * Chunk * qkStride)               // phi(K), float32
                + Align(act * Chunk * qkStride)             // phi(Q), activation type
                + Align(act * BlockColumns * vtStride);     // V^T
        }
    }

    /// <summary>(batch * kv_heads, ceil(d_v / BLOCK_COLS)).</summary>
    public (int X, int Y) Grid(int batch, int kvHeads) => (batch * kvHeads, CeilDiv(ValueDim, BlockColumns));

    protected override IEnumerable<KernelDefine> SpecializationDefines()
    {
        yield return new("ACT_TYPE", (int)Activation);
        yield return new("HEAD_DIM", HeadDim);
        yield return new("VALUE_DIM", ValueDim);
        yield return new("GROUP", Group);
        yield return new("RULE", (int)UpdateRule.Linear);
        yield return new("FEATURE_MAP", (int)FeatureMap);
        yield return new("NORMALIZE", Normalize);
        yield return new("CHUNK", Chunk);
        yield return new("BLOCK_COLS", BlockColumns);
    }
}
