using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.AttentionCommon;

/// <summary>
/// The head layout and softmax scale shared by the softmax-style memory operators (SummaryAttention,
/// HybridAttention): query head h reads KV head h / (q_num_heads / kv_num_heads).
/// </summary>
public readonly record struct HeadAttributes(int QueryHeads, int KvHeads, float Scale)
{
    public static readonly AttributeSpec QNumHeads = new("q_num_heads", AttributeKind.Int, null,
        "number of query heads; the query's last dimension is q_num_heads * head_dim");
    public static readonly AttributeSpec KvNumHeads = new("kv_num_heads", AttributeKind.Int, 0L,
        "number of key/value heads (grouped-query attention); 0 means q_num_heads. Must divide q_num_heads");
    public static readonly AttributeSpec ScaleAttr = new("scale", AttributeKind.Float, 0f,
        "softmax scores are scale * q.k; 0 means 1/sqrt(head_dim)");

    public int GroupSize => QueryHeads / KvHeads;

    /// <summary>The scale a call uses once head_dim is known from the inputs.</summary>
    public float ScaleFor(int headDim) => Scale != 0f ? Scale : 1f / MathF.Sqrt(headDim);

    internal static HeadAttributes Read(in KernelInfo info) =>
        Validate(info.GetInt(QNumHeads), info.GetInt(KvNumHeads), info.GetFloat(ScaleAttr));

    /// <param name="kvHeads">0 means <paramref name="qHeads"/>.</param>
    public static HeadAttributes Validate(long qHeads, long kvHeads, float scale)
    {
        if (qHeads <= 0 || qHeads > 65536)
        {
            throw OrtException.InvalidArgument($"q_num_heads must be in [1, 65536], got {qHeads}");
        }
        if (kvHeads == 0)
        {
            kvHeads = qHeads;
        }
        if (kvHeads < 0 || kvHeads > qHeads || qHeads % kvHeads != 0)
        {
            throw OrtException.InvalidArgument(
                $"kv_num_heads must be positive and divide q_num_heads ({qHeads}), got {kvHeads}");
        }
        if (!float.IsFinite(scale))
        {
            throw OrtException.InvalidArgument($"scale must be finite, got {scale}");
        }
        return new HeadAttributes((int)qHeads, (int)kvHeads, scale);
    }
}
