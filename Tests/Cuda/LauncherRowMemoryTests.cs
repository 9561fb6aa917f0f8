using NUnit.Framework;
using OnnxAttention.Operators.Cuda.Launch;

namespace OnnxAttention.Tests.Cuda;

/// <summary>A padded call's row copies on the device go to the call's launcher (stream), destination first.</summary>
public sealed unsafe class LauncherRowMemoryTests
{
    [Test]
    public void RowCopiesAreStreamOrderedLauncherWorkWithTheDestinationFirst()
    {
        var launcher = new RecordingLauncher();
        var memory = new LauncherRowMemory(launcher);
        var row = memory.Allocate(0);
        var whole = (void*)launcher.Fake();
        memory.Zero(whole, 96);
        memory.Copy(row, whole, 64);
        memory.Copy(row, whole, 0);
        memory.Free(row);

        Assert.That(launcher.Log, Is.EqualTo(new RecordingLauncher.Operation[]
        {
            new RecordingLauncher.Allocated((nint)row, 1),
            new RecordingLauncher.Zeroed((nint)whole, 96),
            new RecordingLauncher.Copied((nint)row, (nint)whole, 64),
            new RecordingLauncher.Freed((nint)row),
        }));
    }
}
