namespace OnnxAttention.Host.Diagnostics;

/// <summary>
/// Resident memory of this process as Linux reports it (/proc/self/status): current (VmRSS) and peak (VmHWM),
/// which count ORT's native allocations as well as the managed heap. The peak can be reset between phases by
/// writing 5 to /proc/self/clear_refs.
/// </summary>
public static class ProcessMemory
{
    public readonly record struct Sample(long ResidentBytes, long PeakResidentBytes, long ManagedBytes);

    public static bool Supported => File.Exists("/proc/self/status");

    public static Sample Read()
    {
        long rss = 0, hwm = 0;
        if (Supported)
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = Kilobytes(line) * 1024;
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) hwm = Kilobytes(line) * 1024;
            }
        }
        else
        {
            rss = hwm = Environment.WorkingSet;
        }
        return new Sample(rss, hwm, GC.GetTotalMemory(forceFullCollection: false));
    }

    /// <summary>Makes the peak start again from the current resident size; false where the kernel does not allow it.</summary>
    public static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static long Kilobytes(string line) =>
        long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
}
