using NUnit.Framework;
using OnnxAttention.Cli.Bench;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Tests.Cli;

/// <summary>
/// bench-ops --targets: the state-traffic arithmetic against figures worked out by hand, the verdict of each relation
/// at its limit, and the four TARGET lines built from given times (the timing itself runs in verify.sh's dry run).
/// </summary>
[TestFixture]
public class DeviceTargetsTests
{
    [Test]
    public void DecodeStateTrafficIsTheFloat32StateReadAndWrittenOnce()
    {
        // B64 H32 d128: 64 * 32 * 128 * 128 = 33,554,432 floats = 134,217,728 bytes, read once and written once.
        Assert.That(StateTraffic.DecodeBytes(64, 32, 128, 128, 4), Is.EqualTo(268_435_456L));
        // B1 H32 d128: 32 * 128 * 128 * 4 = 2,097,152 bytes, twice.
        Assert.That(StateTraffic.DecodeBytes(1, 32, 128, 128, 4), Is.EqualTo(4_194_304L));
        // A bfloat16 state of dk 64, dv 32: 2 * 2 * 8 * 64 * 32 * 2 bytes.
        Assert.That(StateTraffic.DecodeBytes(2, 8, 64, 32, 2), Is.EqualTo(131_072L));
        // 268,435,456 bytes in 100 us = 2.68435456e12 bytes/s; in 134.217728 us exactly 2 TB/s.
        Assert.That(StateTraffic.TerabytesPerSecond(268_435_456L, 100), Is.EqualTo(2.68435456).Within(1e-12));
        Assert.That(StateTraffic.TerabytesPerSecond(268_435_456L, 134.217728), Is.EqualTo(2.0).Within(1e-12));
    }

    [TestCase("<", 9.99, true)]
    [TestCase("<", 10.0, false)]
    [TestCase("<=", 10.0, true)]
    [TestCase("<=", 10.01, false)]
    [TestCase(">=", 10.0, true)]
    [TestCase(">=", 9.99, false)]
    [TestCase(">", 10.0, false)]
    [TestCase(">", 10.01, true)]
    public void AVerdictCompares(string relation, double figure, bool met) =>
        Assert.That(new TargetVerdict("t", figure, "u", relation, 10, "").Met, Is.EqualTo(met));

    [Test]
    public void TheFourTargetLinesComeFromTheThreeCases()
    {
        var cases = DeviceTargets.Cases(cuda: true);
        Assert.That(cases.Select(c => c.Shape), Is.EqualTo(new[]
        {
            new BenchModels.Shape(1, 1, 32, 32, 128), new BenchModels.Shape(64, 1, 32, 32, 128), new BenchModels.Shape(4, 4096, 16, 16, 128),
        }));
        Assert.That(cases[2].OrtActivations, Is.EqualTo(cases[2].Activations), "on CUDA ORT takes the prefill in bfloat16 too");
        DeviceTargets.Measured[] measured =
        [
            new(cases[0], 7.9, 12.0, 1.5),
            // 268,435,456 bytes in 120 us: 2.237 TB/s; ORT in 150 us: 1.79 TB/s.
            new(cases[1], 120, 150, 1.25),
            new(cases[2], 800, 1600, 0.98),
        ];
        var verdicts = DeviceTargets.Verdicts(measured);
        Assert.That(verdicts.Select(v => v.Line.Split(';')[0]), Is.EqualTo(new[]
        {
            "TARGET decode-b1: 7.90 us/layer (< 10) met",
            "TARGET decode-b64: 2.24 TB/s of state traffic (>= 2) met",
            "TARGET prefill-bf16: 0.80 ms (<= 0.77) not met",
            "TARGET faster-than-ort: 0.98 x (the least of the three cases) (> 1) not met",
        }));
        Assert.That(verdicts[1].Line, Does.Contain("268.4 MB of float32 state").And.Contain("ORT 1.79 TB/s"));
        Assert.That(verdicts[3].Line, Does.Contain("decode-b1 1.50x, decode-b64 1.25x, prefill-bf16 0.98x"));

        var csv = DeviceTargets.Csv(verdicts, measured, ExecutionTarget.Cuda()).ToList();
        Assert.That(csv, Has.Count.EqualTo(5));
        Assert.That(csv[2], Does.StartWith("decode-b64,cuda:0,decode B64 H32 d128 float32,2.23696,TB/s of state traffic,>=,2,met,120,150,1.25,"));
        Assert.That(csv[4], Does.StartWith("faster-than-ort,cuda:0,all three cases,0.98,"));
    }

    [Test]
    public void OnTheCpuThePrefillIsShorterAndOrtsSideFloat32()
    {
        var prefill = DeviceTargets.Cases(cuda: false)[2];
        Assert.That(prefill.Shape, Is.EqualTo(new BenchModels.Shape(4, DeviceTargets.CpuPrefillLength, 16, 16, 128)));
        Assert.That(prefill.Activations, Is.EqualTo(TensorProto.Types.DataType.Bfloat16));
        Assert.That(prefill.OrtActivations, Is.EqualTo(TensorProto.Types.DataType.Float));
        Assert.That(prefill.Description, Does.Contain("no bfloat16 LinearAttention"));
    }
}
