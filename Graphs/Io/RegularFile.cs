using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Io;

/// <summary>
/// Reads files named by untrusted input (a model, its external data, an ids file) only when they are regular files,
/// and never more than a caller's bound. On Linux the file is opened non-blocking and its type checked on the open
/// descriptor: a FIFO would otherwise block the open forever, and /dev/zero or a /proc file would be read without end.
/// </summary>
public static class RegularFile
{
    /// <summary>Reads all of <paramref name="path"/>, refusing a file larger than <paramref name="maxBytes"/>.</summary>
    public static byte[] ReadAll(string path, long maxBytes, string what)
    {
        using var handle = Open(path, what, out var length);
        if (length > maxBytes) throw new GraphException($"{what} '{path}' is {length} bytes; at most {maxBytes} are read");
        return ReadAt(handle, 0, length, path, what);
    }

    /// <summary>Reads <paramref name="length"/> bytes at <paramref name="offset"/> (the rest of the file when null), checked against the file's size.</summary>
    public static byte[] ReadRange(string path, long offset, long? length, long maxBytes, string what)
    {
        using var handle = Open(path, what, out var size);
        var count = length ?? size - offset;
        if (offset < 0 || count < 0 || offset > size || count > size - offset)
        {
            throw new GraphException($"{what}: range [{offset}, {(length is { } l && offset <= long.MaxValue - l ? offset + l : "end")}) lies outside '{path}' ({size} bytes)");
        }
        if (count > maxBytes) throw new GraphException($"{what}: {count} bytes in '{path}'; at most {maxBytes} are read");
        return ReadAt(handle, offset, count, path, what);
    }

    private static byte[] ReadAt(SafeFileHandle handle, long offset, long count, string path, string what)
    {
        if (count > Array.MaxLength) throw new GraphException($"{what}: {count} bytes in '{path}' do not fit one buffer");
        var bytes = new byte[count];
        var done = 0;
        while (done < bytes.Length)
        {
            var n = RandomAccess.Read(handle, bytes.AsSpan(done), offset + done);
            if (n <= 0) throw new GraphException($"{what} '{path}' ended after {done} of {count} bytes (it changed while being read)");
            done += n;
        }
        return bytes;
    }

    /// <summary>Opens a regular file for reading and gives its size; anything else is refused naming what it is.</summary>
    private static SafeFileHandle Open(string path, string what, out long length)
    {
        if (Directory.Exists(path)) throw new GraphException($"{what} '{path}' is a folder, not a file");
        if (!OperatingSystem.IsLinux())
        {
            if (!File.Exists(path)) throw new GraphException($"{what} '{path}' does not exist");
            var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            length = RandomAccess.GetLength(handle);
            return handle;
        }
        var fd = Native.open(path, Native.ReadOnlyNonBlockingCloseOnExec);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new GraphException(errno == Native.NoSuchFile ? $"{what} '{path}' does not exist" : $"{what} '{path}' cannot be opened ({Marshal.GetPInvokeErrorMessage(errno)})");
        }
        var owned = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            if (Native.statx(fd, "", Native.EmptyPath, Native.TypeAndSize, out var stat) != 0)
            {
                throw new GraphException($"{what} '{path}' cannot be examined ({Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())})");
            }
            if ((stat.Mode & Native.TypeMask) != Native.Regular)
            {
                throw new GraphException($"{what} '{path}' is {Describe(stat.Mode)}, not a regular file; only regular files are read");
            }
            length = checked((long)stat.Size);
            return owned;
        }
        catch
        {
            owned.Dispose();
            throw;
        }
    }

    private static string Describe(ushort mode) => (mode & Native.TypeMask) switch
    {
        0x1000 => "a FIFO (named pipe)",
        0x2000 => "a character device",
        0x6000 => "a block device",
        0xC000 => "a socket",
        0x4000 => "a folder",
        _ => "a special file",
    };

    /// <summary>libc's open and statx: statx's buffer has the same layout on every Linux architecture.</summary>
    private static class Native
    {
        public const int ReadOnlyNonBlockingCloseOnExec = 0x800 | 0x80000; // O_RDONLY | O_NONBLOCK | O_CLOEXEC
        public const int EmptyPath = 0x1000;                                // AT_EMPTY_PATH: stat the descriptor itself
        public const uint TypeAndSize = 0x1 | 0x200;                        // STATX_TYPE | STATX_SIZE
        public const int TypeMask = 0xF000;
        public const int Regular = 0x8000;
        public const int NoSuchFile = 2;

        [StructLayout(LayoutKind.Explicit, Size = 256)]
        public struct Statx
        {
            [FieldOffset(28)] public ushort Mode;
            [FieldOffset(40)] public ulong Size;
        }

        [DllImport("libc", SetLastError = true)]
        public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, out Statx buffer);
    }
}
