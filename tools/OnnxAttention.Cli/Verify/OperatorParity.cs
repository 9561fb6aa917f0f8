using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Cli.Verify;

/// <summary>
/// Runs one rule in one activation type on a target (CUDA) and on a reference (the CPU kernel) with the same inputs,
/// and compares every output and present state within the type's <see cref="ParityTolerance"/>, in five scenarios:
/// <list type="bullet">
/// <item>prefill: a sequence's first call (no past inputs);</item>
/// <item>prefill from past: a call continuing from a past state of <see cref="ParityLengths.History"/> tokens (built by the reference);</item>
/// <item>decode: single-token calls from that past, each side carrying its own state;</item>
/// <item>split: the target feeds the tokens of "prefill from past" in three calls (one of them a single token), the reference in one;</item>
/// <item>in place: the target's state lives in buffers of its own memory, bound as both past and present of each call;</item>
/// <item>padded rows: from that past, a prefill whose token_mask pads the start of row 0 and the middle and end of row 1
/// (other rows real), then a decode step in which row 1 is padding, then one in which every row is real.</item>
/// </list>
/// </summary>
public sealed class OperatorParity(ParityShape shape, ParityLengths lengths, ExecutionTarget reference, ExecutionTarget target, int threads = 1)
{
    /// <summary>Applied to every result the target returns before it is compared (the self-test's wrong kernel); null in use.</summary>
    public Func<CallResult, CallResult>? Tamper { get; init; }

    public static IReadOnlyList<string> Scenarios { get; } = ["prefill", "prefill from past", "decode", "split", "in place", "padded rows"];

    public IEnumerable<ParityResult> Run(ParityRule rule, ActivationType type, int seed)
    {
        var name = $"{rule} [{shape}]";
        ParitySide? want = null, got = null;
        string? setupError = null;
        try
        {
            want = new ParitySide(rule, shape, type, reference, threads);
            got = new ParitySide(rule, shape, type, target, threads);
        }
        catch (Exception e)
        {
            setupError = "session: " + OneLine(e);
        }
        using (want)
        using (got)
        {
            var sequence = new ParitySequence(rule, shape, type, lengths.Total, seed);
            IReadOnlyList<HostTensor>? past = null;
            try
            {
                // The past every continuing scenario starts from: the reference's state after the history.
                if (setupError is null && lengths.History > 0) past = want!.Run(sequence, 0, lengths.History, null).Presents;
            }
            catch (Exception e)
            {
                setupError = "reference history: " + OneLine(e);
            }
            foreach (var scenario in Scenarios)
            {
                if (setupError is not null)
                {
                    yield return ParityResult.Failed(name, scenario, type, setupError);
                    continue;
                }
                ParityResult result;
                try
                {
                    var (w, g) = Scenario(scenario, sequence, past, want!, got!);
                    result = Compare(name, scenario, type, rule, w, Tamper is null ? g : Tamper(g));
                }
                catch (Exception e)
                {
                    var error = OneLine(e);
                    result = ParityResult.IsUnsupported(error) ? ParityResult.Unsupported(name, scenario, type, error) : ParityResult.Failed(name, scenario, type, error);
                }
                yield return result;
            }
        }
    }

    private (CallResult Want, CallResult Got) Scenario(string scenario, ParitySequence s, IReadOnlyList<HostTensor>? past, ParitySide want, ParitySide got)
    {
        int h = lengths.History, t = lengths.Tokens;
        switch (scenario)
        {
            case "prefill":
                return (want.Run(s, 0, t, null), got.Run(s, 0, t, null));
            case "prefill from past":
                return (want.Run(s, h, t, past), got.Run(s, h, t, past));
            case "decode":
                return (Steps(want, s, h, lengths.DecodeSteps, past), Steps(got, s, h, lengths.DecodeSteps, past));
            case "split":
                {
                    var first = t / 3;
                    var calls = new List<CallResult>();
                    var state = past;
                    foreach (var (start, count) in new[] { (h, first), (h + first, 1), (h + first + 1, t - first - 1) })
                    {
                        calls.Add(got.Run(s, start, count, state));
                        state = calls[^1].Presents;
                    }
                    return (want.Run(s, h, t, past), CallResult.Join(calls));
                }
            case "in place":
                return (want.Run(s, h, t + 1, past), InPlace(got, s, h, t, past!));
            case "padded rows":
                return (Padded(want, s, h, t, past!), Padded(got, s, h, t, past!));
            default:
                throw new ArgumentException($"unknown scenario '{scenario}'");
        }
    }

    private static CallResult Steps(ParitySide side, ParitySequence s, int start, int steps, IReadOnlyList<HostTensor>? past)
    {
        var calls = new List<CallResult>();
        for (var i = 0; i < steps; i++)
        {
            calls.Add(side.Run(s, start + i, 1, past));
            past = calls[^1].Presents;
        }
        return CallResult.Join(calls);
    }

    /// <summary>
    /// Tokens [h, h + t + 1): the first third from the host past into state buffers, then a single token, the rest
    /// of the prefill and a second single token, each reading and writing the same buffers; the last call writes its
    /// presents to the host, so the in-place calls' state is what it continues from.
    /// </summary>
    private static CallResult InPlace(ParitySide side, ParitySequence s, int h, int t, IReadOnlyList<HostTensor> past)
    {
        var buffers = side.Allocate(past);
        try
        {
            var first = t / 3;
            var calls = new List<CallResult> { side.RunBound(s, h, first, past, null, buffers) };
            calls.Add(side.RunBound(s, h + first, 1, null, buffers, buffers));
            calls.Add(side.RunBound(s, h + first + 1, t - first - 2, null, buffers, buffers));
            calls.Add(side.RunBound(s, h + t - 1, 1, null, buffers, buffers));
            calls.Add(side.RunBound(s, h + t, 1, null, buffers, null));
            return CallResult.Join(calls);
        }
        finally
        {
            foreach (var b in buffers) b.Dispose();
        }
    }

    private static CallResult Padded(ParitySide side, ParitySequence s, int h, int t, IReadOnlyList<HostTensor> past)
    {
        var prefill = new long[s.Batch * t];
        Array.Fill(prefill, 1L);
        for (var i = 0; i < Math.Min(3, t); i++) prefill[i] = 0; // row 0: left padding
        if (s.Batch > 1)
        {
            prefill[t + t / 2] = 0; // row 1: a pad inside and two at the end
            prefill[t + t - 1] = 0;
            prefill[t + t - 2] = 0;
        }
        var padRow1 = Enumerable.Range(0, s.Batch).Select(b => b == 1 ? 0L : 1L).ToArray();
        var allReal = Enumerable.Repeat(1L, s.Batch).ToArray();
        var calls = new List<CallResult> { side.RunMasked(s, h, t, past, prefill) };
        calls.Add(side.RunMasked(s, h + t, 1, calls[^1].Presents, padRow1));
        calls.Add(side.RunMasked(s, h + t + 1, 1, calls[^1].Presents, allReal));
        return CallResult.Join(calls);
    }

    private static ParityResult Compare(string name, string scenario, ActivationType type, ParityRule rule, CallResult want, CallResult got)
    {
        var tolerance = ParityTolerance.For(type);
        var worst = 0.0;
        var where = "";
        void Check(string what, Array w, Array g)
        {
            if (w.Length != g.Length)
            {
                worst = double.PositiveInfinity;
                where = $"{what} ({g.Length} elements, expected {w.Length})";
                return;
            }
            for (var i = 0; i < w.Length; i++)
            {
                var (a, b) = w is long[] wl ? ((double)wl[i], (double)((long[])g)[i]) : (((float[])w)[i], (double)((float[])g)[i]);
                var r = w is long[]? (a == b ? 0 : double.PositiveInfinity) : tolerance.Ratio(b, a);
                if (r > worst || double.IsNaN(r))
                {
                    worst = double.IsNaN(r) ? double.PositiveInfinity : r;
                    where = $"{what}[{i}] = {b:G6}, reference {a:G6}";
                }
            }
        }
        Check("output", want.Output, got.Output);
        if (got.Presents.Count != want.Presents.Count)
        {
            return ParityResult.Failed(name, scenario, type, $"{got.Presents.Count} presents, the reference has {want.Presents.Count}");
        }
        for (var i = 0; i < want.Presents.Count; i++)
        {
            if (!want.Presents[i].Shape.SequenceEqual(got.Presents[i].Shape))
            {
                return ParityResult.Failed(name, scenario, type,
                    $"{rule.States[i].Present} has shape [{string.Join(", ", got.Presents[i].Shape)}], the reference [{string.Join(", ", want.Presents[i].Shape)}]");
            }
            Check(rule.States[i].Present, want.Presents[i].Data, got.Presents[i].Data);
        }
        return new ParityResult(name, scenario, type, worst <= 1.0, worst, where);
    }

    /// <summary>A case's error on one line; one that is no user error (a bug of ours) names its type.</summary>
    internal static string OneLine(Exception e)
    {
        var text = (CliErrors.IsUserError(e) ? "" : e.GetType().Name + ": ") + e.Message.ReplaceLineEndings(" ").Trim();
        return text.Length > 400 ? text[..400] + "..." : text;
    }
}

/// <summary>Tokens of a case: the history behind the past state, the tokens of a prefill, the decode steps.</summary>
public sealed record ParityLengths(int History, int Tokens, int DecodeSteps)
{
    /// <summary>A history longer than every window and segment (rings wrap), prefills over more than one 64-token tile.</summary>
    public static ParityLengths Device { get; } = new(230, 70, 4);

    public int Total => History + Tokens + Math.Max(DecodeSteps, 2);
}
