namespace OnnxAttention.Cli.Bench;

/// <summary>
/// The state traffic of a LinearAttention decode call (bench-ops --targets, "decode B64 >= 2 TB/s of state traffic"):
/// a call reads the whole matrix state [batch, kv_heads, head_dim, v_head_dim] once and writes it once; the query, key,
/// value and output of one token are too small to count (1/128 of it at d128), and the bench's decode models carry no
/// normaliser.
/// </summary>
public static class StateTraffic
{
    /// <summary>Bytes of state one decode call reads plus writes.</summary>
    public static long DecodeBytes(int batch, int kvHeads, int keyDim, int valueDim, int elementBytes) =>
        2L * batch * kvHeads * keyDim * valueDim * elementBytes;

    /// <summary>Terabytes (10^12 bytes) per second of <paramref name="bytes"/> moved in <paramref name="microseconds"/>.</summary>
    public static double TerabytesPerSecond(long bytes, double microseconds) => bytes / (microseconds * 1e-6) / 1e12;
}
