using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Registration;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.SummaryAttention;

/// <summary>
/// <c>com.onnxattention.SummaryAttention</c>: causal attention over a fixed-size memory of summary vectors.
/// At step i the query attends, with one softmax, over the summary slots (kbar_s, vbar_s) after token i was
/// absorbed and over the token's own (k_i, v_i). The summaries are running means, moving means over the last
/// <c>window</c> tokens, or bias-corrected EMAs. See docs/operators/SummaryAttention.md for the exact rules.
/// </summary>
public sealed class SummaryAttentionOperator : AttentionOperator
{
    public const string OpName = "SummaryAttention";

    public const int InputQuery = 0;
    public const int InputKey = 1;
    public const int InputValue = 2;
    public const int InputPastKeySummary = 3;
    public const int InputPastValueSummary = 4;
    public const int InputPastCount = 5;
    public const int InputPastKeyWindow = 6;
    public const int InputPastValueWindow = 7;

    public const int OutputY = 0;
    public const int OutputPresentKeySummary = 1;
    public const int OutputPresentValueSummary = 2;
    public const int OutputPresentCount = 3;
    public const int OutputPresentKeyWindow = 4;
    public const int OutputPresentValueWindow = 5;

    /// <param name="activationType">Element type of query, key, value and output (float32, float16 or bfloat16); state is float32.</param>
    public SummaryAttentionOperator(OrtElementType activationType = OrtElementType.Float) : base(activationType)
    {
    }

    protected override OperatorSchema BuildSchema(OrtElementType t) => new(
        OpName,
        OperatorRegistry.Domain,
        Inputs:
        [
            .. QueryKeyValue(t),
            new("past_key_summary", OrtElementType.Float, Optional: true,
                Doc: "[batch, kv_num_heads, num_slots, head_dim]: key sums (cumulative, moving) or uncorrected EMAs (ema)"),
            new("past_value_summary", OrtElementType.Float, Optional: true,
                Doc: "[batch, kv_num_heads, num_slots, v_head_dim]: the same for values"),
            new("past_count", OrtElementType.Int64, Optional: true, Doc: "[batch]: tokens absorbed so far"),
            new("past_key_window", OrtElementType.Float, Optional: true,
                Doc: "[batch, kv_num_heads, window, head_dim]: ring buffer, position p in row p mod window (0 rows unless moving)"),
            new("past_value_window", OrtElementType.Float, Optional: true,
                Doc: "[batch, kv_num_heads, window, v_head_dim]: the same for values"),
        ],
        Outputs:
        [
            Output(t),
            new("present_key_summary", OrtElementType.Float, Optional: true, Doc: "past_key_summary after the last token"),
            new("present_value_summary", OrtElementType.Float, Optional: true, Doc: "past_value_summary after the last token"),
            new("present_count", OrtElementType.Int64, Optional: true, Doc: "past_count + sequence"),
            new("present_key_window", OrtElementType.Float, Optional: true, Doc: "past_key_window after the last token"),
            new("present_value_window", OrtElementType.Float, Optional: true, Doc: "past_value_window after the last token"),
        ],
        SummaryAttentionAttributes.All,
        Doc: "Causal softmax attention over summary vectors (running, moving or exponential means) plus the current token.");

    public override IKernel CreateKernel(in KernelInfo info) => new SummaryAttentionKernel(SummaryAttentionAttributes.Read(info));
}
