using NUnit.Framework;
using OnnxAttention.Host.NativeRuntime;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Tests.Interop;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.NativeRuntime;

/// <summary>Every OrtApi slot the C-API path and the operators call, recounted in the 1.31.1 and the 1.29 headers.</summary>
[TestFixture]
public class OrtSessionApiSlotTests
{
    private static void AssertSlots(List<string> members, string what)
    {
        foreach (var slot in Enum.GetValues<OrtSessionApiSlot>())
        {
            Assert.That((int)slot, Is.LessThan(members.Count), $"{what}: {slot} is past the table's end");
            Assert.That(members[(int)slot], Is.EqualTo(slot.ToString()), $"{what}: session slot {(int)slot}");
        }
        foreach (var slot in Enum.GetValues<OrtApiSlot>())
        {
            Assert.That(members[(int)slot], Is.EqualTo(slot.ToString()), $"{what}: operator slot {(int)slot}");
        }
    }

    [Test]
    public void SlotsMatchThe131Header() => AssertSlots(OrtApiSlotHeaderTests.HeaderMembers(), "ORT 1.31.1");

    [Test]
    public void SlotsMatchThe129Header()
    {
        OrtCores.Require129();
        var header = Path.Combine(OrtCores.Ort129Include, "onnxruntime_c_api.h");
        Assert.That(File.ReadAllText(header), Does.Contain("#define ORT_API_VERSION 29"));
        AssertSlots(OrtApiSlotHeaderTests.HeaderMembers(header), "ORT 1.29");
    }

    [Test]
    public void RequestedVersionIsTheOperatorsAndAtMost29() =>
        Assert.That(OrtLibrary.RequestedApiVersion, Is.EqualTo(OrtApi.RequiredVersion).And.LessThanOrEqualTo(29u));
}
