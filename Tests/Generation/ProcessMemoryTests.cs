using NUnit.Framework;
using OnnxAttention.Host.Diagnostics;

namespace OnnxAttention.Tests.Generation;

/// <summary>Reading /proc/self/status, at the sizes a long batch reaches.</summary>
[TestFixture]
public class ProcessMemoryTests
{
    [TestCase("VmRSS:\t  501234 kB", 501234L)]
    [TestCase("VmHWM:\t 9999999 kB", 9999999L)]
    // From 10,000,000 kB on the number fills its eight places and follows the tab directly (a batch of 8 at 16k
    // with softmax reached it and the benchmark failed there).
    [TestCase("VmHWM:\t17312456 kB", 17312456L)]
    [TestCase("VmHWM:\t123456789 kB", 123456789L)]
    public void StatusLinesGiveTheirKilobytes(string line, long kilobytes) => Assert.That(ProcessMemory.Kilobytes(line), Is.EqualTo(kilobytes));

    [TestCase("VmHWM:\t kB")]
    [TestCase("VmHWM:\t12 MB")]
    [TestCase("VmHWM:")]
    public void AnythingElseIsAFormatError(string line) => Assert.That(() => ProcessMemory.Kilobytes(line), Throws.TypeOf<FormatException>());

    [Test]
    public void ThisProcessReadsAPeakAtLeastItsResidentSize()
    {
        Assume.That(ProcessMemory.Supported, "no /proc/self/status here");
        var sample = ProcessMemory.Read();
        Assert.That(sample.ResidentBytes, Is.GreaterThan(10L << 20));
        Assert.That(sample.PeakResidentBytes, Is.GreaterThanOrEqualTo(sample.ResidentBytes));
    }
}
