namespace OnnxAttention.Tests.Support;

/// <summary>Cutting and joining [batch, seq, width] tensors along the sequence, for decode and split-prefill tests.</summary>
public static class SequenceSlices
{
    /// <summary>Positions [start, start+count) of every batch row of a [batch, seq, width] tensor.</summary>
    public static float[] Slice(float[] x, int batch, int seq, int width, int start, int count)
    {
        var result = new float[batch * count * width];
        for (var b = 0; b < batch; b++)
        {
            Array.Copy(x, (b * seq + start) * width, result, b * count * width, count * width);
        }
        return result;
    }

    /// <summary>Writes a [batch, count, width] piece into positions [start, start+count) of a [batch, seq, width] tensor.</summary>
    public static void Place(float[] piece, float[] whole, int batch, int seq, int width, int start, int count)
    {
        for (var b = 0; b < batch; b++)
        {
            Array.Copy(piece, b * count * width, whole, (b * seq + start) * width, count * width);
        }
    }

    /// <summary>Concatenates per-row tensors whose leading dimension is the batch.</summary>
    public static T[] ConcatRows<T>(IEnumerable<T[]> rows) => rows.SelectMany(r => r).ToArray();
}
