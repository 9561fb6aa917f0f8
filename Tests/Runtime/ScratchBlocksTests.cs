using NUnit.Framework;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Tests.Runtime;

/// <summary>
/// The scratch pool that keeps converted activations' blocks between calls: a returned block serves the next call that
/// fits in it, the smallest fitting one first, and the idle total never passes the limit. Each test has its own pool, so
/// kernels running beside it cannot take its blocks.
/// </summary>
[TestFixture]
public unsafe class ScratchBlocksTests
{
    [Test]
    public void AReturnedBlockServesTheNextCallThatFits()
    {
        var pool = new ScratchBlocks(1 << 20);
        var first = pool.Rent(4000, out var capacity);
        Assert.That(capacity, Is.EqualTo(4000));
        new Span<byte>(first, 4000).Fill(7);
        pool.Return(first, capacity);
        Assert.That(pool.IdleBytes, Is.EqualTo(4000));

        var again = pool.Rent(3000, out var againCapacity);
        Assert.Multiple(() =>
        {
            Assert.That((nint)again, Is.EqualTo((nint)first));
            Assert.That(againCapacity, Is.EqualTo(4000), "the whole block comes back with its size");
            Assert.That(pool.IdleBytes, Is.Zero);
        });
        var bigger = pool.Rent(5000, out var biggerCapacity);
        Assert.That((nint)bigger, Is.Not.EqualTo((nint)again), "a block in use is not handed out twice");
        Assert.That(biggerCapacity, Is.EqualTo(5000));
        new Span<byte>(bigger, 5000).Fill(1);
        pool.Return(again, againCapacity);
        pool.Return(bigger, biggerCapacity);
        Assert.That(pool.IdleBytes, Is.EqualTo(9000));

        var small = pool.Rent(100, out var smallCapacity);
        Assert.That((nint)small, Is.EqualTo((nint)first), "the smallest block that fits, so the large one stays for a large call");
        pool.Return(small, smallCapacity);
    }

    [Test]
    public void TheIdleTotalStaysUnderTheLimit()
    {
        var pool = new ScratchBlocks(10_000);
        var a = pool.Rent(4000, out var ca);
        var b = pool.Rent(5000, out var cb);
        var c = pool.Rent(3000, out var cc);
        var huge = pool.Rent(20_000, out var ch);
        pool.Return(a, ca);
        pool.Return(b, cb);
        Assert.That(pool.IdleBytes, Is.EqualTo(9000));
        // 9000 + 3000 passes 10,000: the smallest idle block (4000) is freed to make room.
        pool.Return(c, cc);
        Assert.That(pool.IdleBytes, Is.EqualTo(8000));
        // Larger than the limit on its own: freed, not kept.
        pool.Return(huge, ch);
        Assert.That(pool.IdleBytes, Is.EqualTo(8000));

        var next = pool.Rent(4500, out var cn);
        Assert.Multiple(() =>
        {
            Assert.That((nint)next, Is.EqualTo((nint)b), "the 5000-byte block is still idle");
            Assert.That(cn, Is.EqualTo(5000));
        });
        pool.Return(next, cn);
    }
}
