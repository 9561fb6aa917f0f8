using System.Runtime.InteropServices;

namespace OnnxAttention.Host.Diagnostics;

/// <summary>
/// Resident memory of this process as Linux reports it (/proc/self/status): current (VmRSS) and peak (VmHWM),
/// which count ORT's native allocations as well as the managed heap. The peak can be reset between phases by
/// writing 5 to /proc/self/clear_refs.
/// </summary>
public static class ProcessMemory
{
    /// <summary>
    /// Hands memory that glibc's malloc holds free back to the kernel (malloc_trim), so that it leaves the resident
    /// size. Without it, a measurement taken after other work starts from a resident size inflated by freed heap, and
    /// the next run reuses those pages without raising the peak: its "peak added" is too low by an amount that depends
    /// on what ran before (bench-generate's window rule read 0 .. 232 MB, then 66 / 78 / 0 MB at 1k / 4k / 16k run
    /// alone). Memory held by live allocators (ORT's arenas, the managed heap) stays resident. False where there is no
    /// glibc.
    /// </summary>
    public static bool ReturnFreedMemory()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            _ = malloc_trim(0);
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>
    /// Returns what the process allocated and dropped to the kernel: an aggressive, compacting collection (twice,
    /// around the finalizers) decommits the managed heap's free memory, then <see cref="ReturnFreedMemory"/> the native
    /// heap's. A plain collection frees the objects but keeps their pages: after loading the 100M-parameter Llama the
    /// resident size stayed at 1.76 GB after GC.Collect() and fell to 0.50 GB after this.
    /// </summary>
    public static void Compact()
    {
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        ReturnFreedMemory();
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int malloc_trim(nuint pad);

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

    /// <summary>
    /// The number of a /proc status line such as "VmHWM:\t  123456 kB". The kernel pads the number to eight places
    /// after the tab, so from 10,000,000 kB (about 9.5 GiB) on, no space separates it from the tab.
    /// </summary>
    public static long Kilobytes(string line)
    {
        var fields = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        return fields.Length == 3 && fields[2] == "kB" && long.TryParse(fields[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var kb)
            ? kb : throw new FormatException($"'{line}' is not a /proc status line of kilobytes (NAME: N kB)");
    }
}
