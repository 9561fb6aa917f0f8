using CsCheck;
using Google.Protobuf;
using NUnit.Framework;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Tests.Hostile;

/// <summary>Ids files are untrusted: dims whose product wraps, data longer than the shape, two copies of the data.</summary>
[TestFixture]
public class IdsFileTests
{
    private static TensorProto Ids(long[] dims, long[]? typed = null, int? rawLongs = null)
    {
        var t = new TensorProto { Name = "input_ids", DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.AddRange(dims);
        if (typed is not null) t.Int64Data.AddRange(typed);
        if (rawLongs is { } n) t.RawData = ByteString.CopyFrom(new byte[8 * n]);
        return t;
    }

    [TestCase(new long[] { (1L << 62) + 1, 4 }, 4, "has shape [4611686018427387905, 4]; at most 16777216 ids are taken")]
    [TestCase(new long[] { 1L << 32, 1L << 32 }, 0, "has shape [4294967296, 4294967296]; at most 16777216 ids are taken")]
    [TestCase(new long[] { 1, 3 }, 5, "declares shape [1, 3] (3 ids, 24 bytes) but its raw_data holds 40 bytes")]
    [TestCase(new long[] { 2, 2 }, 3, "declares shape [2, 2] (4 ids, 32 bytes) but its raw_data holds 24 bytes")]
    public void RawIdsThatDisagreeWithTheShapeAreRefused(long[] dims, int rawLongs, string expected)
    {
        var e = Assert.Throws<GraphException>(() => IdsReader.FromTensor(Ids(dims, rawLongs: rawLongs == 0 ? null : rawLongs)));
        Assert.That(e!.Message, Is.EqualTo("--input-ids " + expected));
    }

    [Test]
    public void RawAndTypedIdsTogetherAreRefused()
    {
        var e = Assert.Throws<GraphException>(() => IdsReader.FromTensor(Ids([1, 2], typed: [1, 2], rawLongs: 2)));
        Assert.That(e!.Message, Does.Contain("holds both raw_data and int64_data"));
    }

    [Test]
    public void GoodIdsAreRead()
    {
        var ids = IdsReader.FromTensor(Ids([2, 3], typed: [1, 2, 3, 4, 5, 6]));
        Assert.That((ids.Batch, ids.Sequence, ids.Values), Is.EqualTo((2, 3, new long[] { 1, 2, 3, 4, 5, 6 })));
    }

    /// <summary>Any TensorProto at all: read, or refused with our exception; nothing else, and never a wrong count.</summary>
    [Test]
    public void AnyTensorIsReadConsistentlyOrRefused()
    {
        var dim = Gen.OneOf(Gen.Long[-2, 5], Gen.Long, Gen.OneOf(1L << 31, 1L << 32, (1L << 62) + 1, long.MaxValue, long.MinValue));
        var gen = Gen.Select(Gen.Int[0, 3].SelectMany(n => dim.Array[n, n]), Gen.Int[0, 12], Gen.Long.Array[0, 12], Gen.Bool, Gen.Int[0, 9]);
        gen.Sample(x =>
        {
            var (dims, raw, typed, external, type) = x;
            var t = Ids(dims, typed: typed, rawLongs: raw == 0 ? null : raw);
            t.DataType = type == 0 ? 1 : 7;
            if (external) t.DataLocation = TensorProto.Types.DataLocation.External;
            try
            {
                var ids = IdsReader.FromTensor(t);
                return ids.Values.Length == (long)ids.Batch * ids.Sequence && ids.Batch == dims[0] && ids.Sequence == dims[1] && ids.Batch > 0 && ids.Sequence > 0;
            }
            catch (GraphException)
            {
                return true;
            }
        }, iter: 3000);
    }
}
