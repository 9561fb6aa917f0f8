using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.WindowAttention;

/// <summary>
/// <c>com.onnxattention.WindowAttention</c>: causal sliding-window softmax attention. The query at position p
/// attends to the keys at positions p - window &lt; j &lt;= p and to the first <c>sinks</c> positions of the stream
/// (attention sinks, each counted once). The state is a fixed-size KV cache: <c>sinks</c> rows that keep positions
/// 0 .. sinks-1, then a ring buffer of <c>window</c> rows holding position p in row sinks + (p mod window).
/// See docs/operators/WindowAttention.md.
/// </summary>
public sealed class WindowAttentionOperator : AttentionOperator
{
    public const string OpName = "WindowAttention";

    public const int InputQuery = AttentionInputs.Query;
    public const int InputKey = AttentionInputs.Key;
    public const int InputValue = AttentionInputs.Value;
    public const int InputPastKeyCache = AttentionInputs.FirstPast + WindowAttentionContract.KeyCache;
    public const int InputPastValueCache = AttentionInputs.FirstPast + WindowAttentionContract.ValueCache;
    public const int InputPastPosition = AttentionInputs.FirstPast + WindowAttentionContract.Position;

    public const int OutputY = AttentionInputs.Output;
    public const int OutputPresentKeyCache = AttentionInputs.FirstPresent + WindowAttentionContract.KeyCache;
    public const int OutputPresentValueCache = AttentionInputs.FirstPresent + WindowAttentionContract.ValueCache;
    public const int OutputPresentPosition = AttentionInputs.FirstPresent + WindowAttentionContract.Position;

    /// <param name="activationType">Element type of query, key, value and output (float32, float16 or bfloat16); state is float32.</param>
    public WindowAttentionOperator(OrtElementType activationType = OrtElementType.Float) : base(activationType)
    {
    }

    protected override OperatorSchema BuildSchema(OrtElementType t) => WindowAttentionContract.Contract.Schema(t);

    protected override IKernel CreateAttentionKernel(in KernelInfo info) => new WindowAttentionKernel(WindowAttentionAttributes.Read(info));
}
