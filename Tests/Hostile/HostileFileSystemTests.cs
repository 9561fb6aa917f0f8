using System.Runtime.InteropServices;
using Google.Protobuf;
using NUnit.Framework;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Hostile;

/// <summary>
/// The hostile inputs that need the file system, made at run time: external data that names a FIFO (opening it
/// blocked forever), a location through a folder that is a symbolic link out of the model's folder (it read
/// /etc/hostname), /dev/zero behind a link, and ids files that are a FIFO or /dev/zero. Each is refused within seconds.
/// </summary>
[TestFixture]
[NonParallelizable] // redirects Console
public class HostileFileSystemTests
{
    private string _dir = "";

    [SetUp]
    public void MakeFolder() => Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "onnx-attention-hostile-fs", Guid.NewGuid().ToString("N")));

    [TearDown]
    public void RemoveFolder() => Directory.Delete(_dir, recursive: true);

    [DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
    private static extern int MakeFifo([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint mode);

    private string Fifo(string name)
    {
        var path = Path.Combine(_dir, name);
        Assert.That(MakeFifo(path, 0x180), Is.EqualTo(0), $"mkfifo {path}");
        return path;
    }

    private string ModelWithExternalWeight(string location)
    {
        var weight = new TensorProto { Name = "w", DataType = (int)TensorProto.Types.DataType.Float, DataLocation = TensorProto.Types.DataLocation.External };
        weight.Dims.Add(3);
        weight.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        var model = new ModelBuilder()
            .Input("x", TensorProto.Types.DataType.Float, 3)
            .Initializer(weight)
            .Node("Add", ["x", "w"], ["y"])
            .Output("y", TensorProto.Types.DataType.Float, 3)
            .Build();
        var path = Path.Combine(_dir, "model.onnx");
        File.WriteAllBytes(path, model.ToByteArray());
        return path;
    }

    /// <summary>Runs <paramref name="load"/> on a thread: a blocking open must fail the test, not hang the run.</summary>
    private static GraphException RefusedWithin(TimeSpan limit, Action load)
    {
        Exception? thrown = null;
        var thread = new Thread(() =>
        {
            try
            {
                load();
            }
            catch (Exception e)
            {
                thrown = e;
            }
        })
        { IsBackground = true };
        thread.Start();
        Assert.That(thread.Join(limit), Is.True, $"still running after {limit}: it blocks");
        Assert.That(thrown, Is.InstanceOf<GraphException>(), thrown?.ToString());
        return (GraphException)thrown!;
    }

    [Test]
    public void ExternalDataThatIsAFifoIsRefusedWithoutBlocking()
    {
        Fifo("weights.bin");
        var e = RefusedWithin(TimeSpan.FromSeconds(10), () => ModelFile.Load(ModelWithExternalWeight("weights.bin")));
        Assert.That(e.Message, Does.Contain("is a FIFO (named pipe), not a regular file"));
    }

    [Test]
    public void ExternalDataThroughASymlinkedFolderThatLeavesTheModelsFolderIsRefused()
    {
        Directory.CreateSymbolicLink(Path.Combine(_dir, "link_dir"), "/etc");
        var e = RefusedWithin(TimeSpan.FromSeconds(10), () => ModelFile.Load(ModelWithExternalWeight("link_dir/hostname")));
        Assert.That(e.Message, Does.Contain("leaves the model's folder").And.Contain("through a symbolic link"));
    }

    [Test]
    public void ExternalDataThroughASymlinkedFolderInsideTheModelsFolderIsRead()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "real"));
        File.WriteAllBytes(Path.Combine(_dir, "real", "w.bin"), MemoryMarshal.AsBytes<float>([1f, 2f, 3f]).ToArray());
        Directory.CreateSymbolicLink(Path.Combine(_dir, "alias"), Path.Combine(_dir, "real"));
        var model = ModelFile.Load(ModelWithExternalWeight("alias/w.bin"));
        Assert.That(Tensors.ToFloatArray(model.Graph.Initializer[0]), Is.EqualTo(new[] { 1f, 2f, 3f }));
    }

    [Test]
    public void ExternalDataThatIsDevZeroBehindALinkIsRefused()
    {
        File.CreateSymbolicLink(Path.Combine(_dir, "zero"), "/dev/zero");
        var e = RefusedWithin(TimeSpan.FromSeconds(10), () => ModelFile.Load(ModelWithExternalWeight("zero")));
        Assert.That(e.Message, Does.Contain("leaves the model's folder"));
    }

    [Test]
    public void ALinkLoopIsRefused()
    {
        File.CreateSymbolicLink(Path.Combine(_dir, "loop"), Path.Combine(_dir, "loop"));
        var e = RefusedWithin(TimeSpan.FromSeconds(10), () => ModelFile.Load(ModelWithExternalWeight("loop")));
        Assert.That(e.Message, Does.Contain("more than 40 symbolic links"));
    }

    [Test]
    public void AModelFileThatIsAFifoIsRefusedWithoutBlocking()
    {
        var fifo = Fifo("model.onnx");
        var e = RefusedWithin(TimeSpan.FromSeconds(10), () => ModelFile.Load(fifo));
        Assert.That(e.Message, Does.Contain("is a FIFO (named pipe), not a regular file"));
    }

    [TestCase("fifo")]
    [TestCase("/dev/zero")]
    public void IdsThatAreAFifoOrDevZeroAreRefusedByTheCommandLine(string kind)
    {
        var ids = kind == "fifo" ? Fifo("ids.pb") : kind;
        var model = Path.Combine(TestPaths.Shared, "fixtures", "exported-decoders", "gpt2-eager-dynamo", "model.onnx");
        (int Code, string Out, string Err) result = (0, "", "");
        RefusedWithinCli(() => result = CommandLineRun.Invoke(LogitsCommand.Create(), "--model", model, "--attention", "window:16", "--input-ids", ids, "--out", Path.Combine(_dir, "l.pb")));
        var (code, output, error) = result;
        Assert.That(code, Is.EqualTo(1), output + error);
        Assert.That(error.Trim(), Does.StartWith("error: --input-ids").And.Contain(kind == "fifo" ? "is a FIFO" : "is a character device"));
    }

    private static void RefusedWithinCli(Action run)
    {
        var thread = new Thread(() => run()) { IsBackground = true };
        thread.Start();
        Assert.That(thread.Join(TimeSpan.FromSeconds(20)), Is.True, "the command blocks");
    }

    [Test]
    public void TheCommandLineRefusesTheSymlinkedFolderInOneLine()
    {
        Directory.CreateSymbolicLink(Path.Combine(_dir, "link_dir"), "/etc");
        var (code, output, error) = CommandLineRun.Invoke(InspectCommand.Create(), ModelWithExternalWeight("link_dir/hostname"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(1));
        Assert.That(error, Does.StartWith("error: ").And.Contain("leaves the model's folder"));
        var host = File.Exists("/etc/hostname") ? File.ReadAllText("/etc/hostname").Trim() : "";
        if (host.Length > 0) Assert.That(output + error, Does.Not.Contain(host));
    }
}
