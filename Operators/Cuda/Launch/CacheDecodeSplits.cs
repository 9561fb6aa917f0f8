namespace OnnxAttention.Operators.Cuda.Launch;

/// <summary>
/// How many blocks split one (batch row, KV head)'s cache rows in the split-K decode kernels (window, segment,
/// hybrid): enough blocks for about two per multiprocessor, each split at least one 64-row tile, and one split when
/// the batch already fills the GPU. A guess, not a measurement (nothing has run on a GPU yet).
/// </summary>
public static class CacheDecodeSplits
{
    public const int RowsPerTile = 64;

    public static int Choose(int rows, int blocksWithoutSplit, int multiprocessors)
    {
        var target = 2 * Math.Max(multiprocessors, 1);
        if (rows <= RowsPerTile || blocksWithoutSplit >= target)
        {
            return 1;
        }
        var wanted = (target + blocksWithoutSplit - 1) / blocksWithoutSplit;
        var most = (rows + RowsPerTile - 1) / RowsPerTile;
        return Math.Clamp(wanted, 1, Math.Min(most, 65535));
    }
}
