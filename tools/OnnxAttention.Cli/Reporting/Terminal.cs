using Spectre.Console;

namespace OnnxAttention.Cli.Reporting;

/// <summary>
/// A Spectre console on the Console.Out of this moment. The static AnsiConsole keeps the writer it first saw, so a
/// second command in the same process (the tests run several) would write to a writer that was since replaced.
/// </summary>
public static class Terminal
{
    public static IAnsiConsole Open()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        // Tables wider than a pipe's default 80 columns stay readable in logs and CI output.
        if (Console.IsOutputRedirected) console.Profile.Width = 220;
        return console;
    }
}
