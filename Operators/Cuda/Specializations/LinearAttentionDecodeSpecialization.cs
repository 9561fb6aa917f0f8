using OnnxAttention.Operators.LinearAttention;

namespace OnnxAttention.Operators.Cuda.Specializations;

/// <summary>
/// linear_attention_decode.cu for one shape and configuration of LinearAttention. Launch: grid
/// <see cref="Grid"/>, block <see cref="KernelSpecialization.ThreadsPerBlock"/>, no dynamic shared memory.
/// </summary>
public sealed record LinearAttentionDecodeSpecialization : KernelSpecialization
{
    public LinearAttentionDecodeSpecialization(int headDim, int valueDim, int group, UpdateRule rule, FeatureMap featureMap,
        bool normalize, CudaActivation activation, bool gatePerKey = true, bool betaPerHead = true, int? blockColumns = null)
    {
        RequireRange(nameof(headDim), headDim, 1, 256);
        RequireRange(nameof(valueDim), valueDim, 1, 4096);
        RequireRange(nameof(group), group, 1, 64);
        var columns = blockColumns ?? Math.Min(RoundUp(valueDim, 32), 128);
        if (columns < 32 || columns > 512 || columns % 32 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(blockColumns), columns, "block columns must be a multiple of 32 in [32, 512]");
        }
        (HeadDim, ValueDim, Group, Rule, FeatureMap, Normalize, Activation, GatePerKey, BetaPerHead, BlockColumns) =
            (headDim, valueDim, group, rule, featureMap, normalize, activation, gatePerKey, betaPerHead, columns);
    }

    public int HeadDim { get; }
    public int ValueDim { get; }
    public int Group { get; }
    public UpdateRule Rule { get; }
    public FeatureMap FeatureMap { get; }
    public bool Normalize { get; }
    public CudaActivation Activation { get; }
    /// <summary>Gated rules: decay per key dimension ([B, T, H_kv * d_k]) rather than per head ([B, T, H_kv]).</summary>
    public bool GatePerKey { get; }
    /// <summary>Delta rules: beta per head ([B, T, H_kv]) rather than shared ([B, T, 1]).</summary>
    public bool BetaPerHead { get; }
    /// <summary>Value columns per block (BLOCK_COLS).</summary>
    public int BlockColumns { get; }

    public override KernelSource Source => KernelSources.LinearAttentionDecode;

    /// <summary>32 * (BLOCK_COLS / 32) * ROW_SPLITS, ROW_SPLITS = min(ceil(d_k / 32), max(1, 16 / (BLOCK_COLS / 32))).</summary>
    public override int ThreadsPerBlock
    {
        get
        {
            var columnGroups = BlockColumns / 32;
            var rowSplits = Math.Min(CeilDiv(HeadDim, 32), Math.Max(1, 16 / columnGroups));
            return 32 * columnGroups * rowSplits;
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
        yield return new("RULE", (int)Rule);
        yield return new("FEATURE_MAP", (int)FeatureMap);
        yield return new("NORMALIZE", Normalize);
        yield return new("BLOCK_COLS", BlockColumns);
        if (UpdateRules.IsGated(Rule))
        {
            yield return new("GATE_PER_KEY", GatePerKey);
        }
        if (UpdateRules.IsDelta(Rule))
        {
            yield return new("BETA_PER_HEAD", BetaPerHead);
        }
    }
}
