using NUnit.Framework;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Tests.Cli;

/// <summary>
/// A user's mistake ends a command with one line and exit code 1; a bug in the program (an exception no check of ours
/// throws for bad input) says it is one, keeps its stack trace and exits with a different code.
/// </summary>
[TestFixture]
[NonParallelizable] // redirects the process-wide Console
public class CliErrorsTests
{
    private static (int Code, string Err) Run(Func<int> body)
    {
        var old = Console.Error;
        using var error = new StringWriter();
        Console.SetError(error);
        try
        {
            return (CliErrors.Run(body), error.ToString());
        }
        finally
        {
            Console.SetError(old);
        }
    }

    public static IEnumerable<TestCaseData> UserErrors()
    {
        yield return new TestCaseData(new ArgumentException("--out is an input")).SetArgDisplayNames("ArgumentException");
        yield return new TestCaseData(new FormatException("'x' is not a token id")).SetArgDisplayNames("FormatException");
        yield return new TestCaseData(new FileNotFoundException("model.onnx not found")).SetArgDisplayNames("FileNotFoundException");
        yield return new TestCaseData(new InvalidDataException("not a model")).SetArgDisplayNames("InvalidDataException");
        yield return new TestCaseData(new GraphException("cycle")).SetArgDisplayNames("GraphException");
        yield return new TestCaseData(new InvalidOperationException("the model failed after 3 tokens")).SetArgDisplayNames("InvalidOperationException");
    }

    public static IEnumerable<TestCaseData> Bugs()
    {
        yield return new TestCaseData(new NullReferenceException("null")).SetArgDisplayNames("NullReferenceException");
        yield return new TestCaseData(new IndexOutOfRangeException("index")).SetArgDisplayNames("IndexOutOfRangeException");
        yield return new TestCaseData(new InvalidCastException("cast")).SetArgDisplayNames("InvalidCastException");
        yield return new TestCaseData(new ArgumentOutOfRangeException("count", "out of range")).SetArgDisplayNames("ArgumentOutOfRangeException");
        yield return new TestCaseData(new ArgumentNullException("model")).SetArgDisplayNames("ArgumentNullException");
        yield return new TestCaseData(new ObjectDisposedException("session")).SetArgDisplayNames("ObjectDisposedException");
        yield return new TestCaseData(new KeyNotFoundException("key")).SetArgDisplayNames("KeyNotFoundException");
    }

    [TestCaseSource(nameof(UserErrors))]
    public void AUserErrorIsOneLineWithExitCodeOne(Exception thrown)
    {
        var (code, err) = Run(() => throw thrown);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Is.EqualTo($"error: {thrown.Message}{Environment.NewLine}"));
    }

    [TestCaseSource(nameof(Bugs))]
    public void ABugSaysSoWithItsStackTraceAndAnotherExitCode(Exception thrown)
    {
        var (code, err) = Run(() => Throw(thrown));
        Assert.That(code, Is.EqualTo(CliErrors.BugExitCode).And.Not.EqualTo(1));
        Assert.That(err, Does.StartWith("internal error (a bug in onnx-attention"));
        Assert.That(err, Does.Contain(thrown.GetType().FullName!).And.Contain(nameof(Throw)), "the exception and its stack trace");
    }

    private static int Throw(Exception e) => throw e;
}
