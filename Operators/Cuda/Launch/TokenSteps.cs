using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Cuda.Specializations;

namespace OnnxAttention.Operators.Cuda.Launch;

/// <summary>
/// How the decode-only kernels (window, segment, hybrid: one query token per batch row, activations laid out as
/// [batch, 1, ...]) cover a call: one launch over the whole batch for one token. The launch plans send every call of
/// more than one token to the prompt kernels (<see cref="Ops.CachePrefillCudaLaunches"/>), so only T = 1 (and the
/// empty T = 0) reaches this; for T > 1 it would still give one launch per (token, batch row) with batch 1,
/// token-major (every row of token t before any of token t + 1), which is correct but is no longer used. Offsets
/// are in bytes.
/// </summary>
public readonly record struct TokenSteps(QkvShapes Shapes, int QueryHeads, int KvHeads, CudaActivation Activation)
{
    /// <summary>Batch rows per launch: all of them for one token, else one.</summary>
    public int BatchPerLaunch => Shapes.SequenceLength == 1 ? Shapes.Batch : 1;

    /// <summary>Launches per token.</summary>
    public int LaunchesPerToken => Shapes.Batch / BatchPerLaunch;

    public int ActivationBytes => ElementBytes(Activation);

    public static int ElementBytes(CudaActivation activation) => activation == CudaActivation.Float32 ? 4 : 2;

    /// <summary>Byte offset of (batch row, token) in a [batch, T, heads * dim] activation.</summary>
    public long Activation3(int row, int token, int heads, int dim) =>
        ((long)row * Shapes.SequenceLength + token) * heads * dim * ActivationBytes;

    public long Query(int row, int token) => Activation3(row, token, QueryHeads, Shapes.KeyDim);

    public long Key(int row, int token) => Activation3(row, token, KvHeads, Shapes.KeyDim);

    public long Value(int row, int token) => Activation3(row, token, KvHeads, Shapes.ValueDim);

    public long Output(int row, int token) => Activation3(row, token, QueryHeads, Shapes.ValueDim);

    /// <summary>Byte offset of batch row <paramref name="row"/> in a float32 state [batch, kv_heads, rows, dim].</summary>
    public long State(int row, long rowsTimesDim) => (long)row * KvHeads * rowsTimesDim * sizeof(float);

    /// <summary>Adds a byte offset to a pointer, keeping null null (an absent tensor stays absent).</summary>
    public static nint At(nint pointer, long offset) => pointer == 0 ? 0 : checked(pointer + (nint)offset);
}
