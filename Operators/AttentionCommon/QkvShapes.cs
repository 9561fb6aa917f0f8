using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.AttentionCommon;

/// <summary>
/// Batch, sequence length and head dims of one call, read from query [batch, seq, q_heads * head_dim],
/// key [batch, seq, kv_heads * head_dim] and value [batch, seq, kv_heads * v_head_dim] and checked against
/// each other. Every mismatch names the offending tensor and its shape.
/// </summary>
public readonly record struct QkvShapes(int Batch, int SequenceLength, int KeyDim, int ValueDim)
{
    /// <summary>Largest element count of any tensor we index with int arithmetic.</summary>
    public const long MaxElements = int.MaxValue;

    internal static QkvShapes From(in KernelContext context, HeadAttributes heads, int queryIndex, int keyIndex, int valueIndex)
    {
        var q = context.Input(queryIndex);
        var k = context.Input(keyIndex);
        var v = context.Input(valueIndex);
        RequireRank(q, 3, "query", "[batch, sequence, q_num_heads * head_dim]");
        RequireRank(k, 3, "key", "[batch, sequence, kv_num_heads * head_dim]");
        RequireRank(v, 3, "value", "[batch, sequence, kv_num_heads * v_head_dim]");
        if (!FloatIO.IsSupported(q.ElementType) || k.ElementType != q.ElementType || v.ElementType != q.ElementType)
        {
            throw OrtException.InvalidArgument(
                $"query, key and value must share one element type ({FloatIO.SupportedText}), got {q.ElementType}, {k.ElementType}, {v.ElementType}");
        }
        long batch = q.Dim(0), seq = q.Dim(1);
        if (k.Dim(0) != batch || v.Dim(0) != batch || k.Dim(1) != seq || v.Dim(1) != seq)
        {
            throw OrtException.InvalidArgument(
                $"query {q.ShapeText}, key {k.ShapeText} and value {v.ShapeText} must agree on batch and sequence length");
        }
        if (q.Dim(2) <= 0 || q.Dim(2) % heads.QueryHeads != 0)
        {
            throw OrtException.InvalidArgument(
                $"query's last dimension {q.Dim(2)} is not a positive multiple of q_num_heads={heads.QueryHeads}");
        }
        var dk = q.Dim(2) / heads.QueryHeads;
        if (k.Dim(2) != heads.KvHeads * dk)
        {
            throw OrtException.InvalidArgument(
                $"key's last dimension {k.Dim(2)} must be kv_num_heads * head_dim = {heads.KvHeads} * {dk} = {heads.KvHeads * dk} (query {q.ShapeText}, q_num_heads={heads.QueryHeads})");
        }
        if (v.Dim(2) <= 0 || v.Dim(2) % heads.KvHeads != 0)
        {
            throw OrtException.InvalidArgument(
                $"value's last dimension {v.Dim(2)} is not a positive multiple of kv_num_heads={heads.KvHeads}");
        }
        var dv = v.Dim(2) / heads.KvHeads;
        // Head dims are returned as int: refuse, rather than truncate, one that does not fit.
        RequireSize(dk, "head_dim");
        RequireSize(dv, "v_head_dim");
        RequireSize(q.ElementCount, "query");
        RequireSize(k.ElementCount, "key");
        RequireSize(v.ElementCount, "value");
        RequireSize(batch * seq * heads.QueryHeads * dv, "output");
        return new QkvShapes((int)batch, (int)seq, (int)dk, (int)dv);
    }

    public static void RequireSize(long elements, string name)
    {
        if (elements > MaxElements)
        {
            throw OrtException.InvalidArgument($"{name} would hold {elements} elements; at most {MaxElements} are supported");
        }
    }

    private static void RequireRank(in Tensor t, int rank, string name, string layout)
    {
        if (t.Rank != rank)
        {
            throw OrtException.InvalidArgument($"{name} must have rank {rank} {layout}, got shape {t.ShapeText}");
        }
    }
}
