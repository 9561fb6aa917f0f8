using System.CommandLine;
using System.Globalization;
using OnnxAttention.Graphs.Llama2c;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Quality;
using OnnxAttention.Host.Quality.Tuning;
using Spectre.Console;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// calibrate's end-to-end stage (<see cref="EndToEndTuning"/>): its options, and the step after the plan search that
/// tunes the chosen plan's maps, mixes and, on request, attention projections against the original's logits.
/// </summary>
public sealed class CalibrateTuning
{
    private readonly Option<int> _steps = new("--tune-steps")
    {
        Description = "after choosing the plan, Adam steps tuning all layers together against the original model's next-token distributions (KL on the calibration ids; llama2.c .bin models); 0: none",
        DefaultValueFactory = _ => 0,
    };

    private readonly Option<bool> _projections = new("--tune-projections")
    {
        Description = "with --tune-steps: also tune every layer's attention projections wq, wk, wv, wo (the written model's weights then differ from the original's)",
    };

    private readonly Option<float> _rate = new("--tune-rate")
    {
        Description = "with --tune-steps: Adam's step size for the feature maps (mixes 10x, projections 0.1x)",
        DefaultValueFactory = _ => 3e-3f,
    };

    public IEnumerable<Option> Options => [_steps, _projections, _rate];

    public Option<int> StepsOption => _steps;

    /// <summary>The tuned plan, the unswapped model to swap with it (its projections changed if tuned) and the KL before and after, measured by ORT.</summary>
    public sealed record Outcome(AttentionRule Rule, QualityModel Model, double KlBefore, double KlAfter, EndToEndTuning.Result Result, bool ProjectionsChanged, TimeSpan Took);

    /// <summary>Checks the options before any work; true when tuning is asked for.</summary>
    public bool Requested(ParseResult parse, FileInfo model)
    {
        var steps = parse.GetValue(_steps);
        if (steps < 0) throw new ArgumentException($"--tune-steps must be >= 0, got {steps}");
        if (!(parse.GetValue(_rate) > 0) || !float.IsFinite(parse.GetValue(_rate))) throw new ArgumentException($"--tune-rate must be a positive number, got {parse.GetValue(_rate)}");
        if (steps == 0) return parse.GetValue(_projections) ? throw new ArgumentException("--tune-projections needs --tune-steps N > 0") : false;
        if (!model.Extension.Equals(".bin", StringComparison.OrdinalIgnoreCase)) throw new ArgumentException($"--tune-steps needs a llama2.c .bin model (the training side computes that architecture), got '{model.Name}'");
        return true;
    }

    /// <summary>The plan search's candidates that the training side can compute, when tuning follows.</summary>
    public static IReadOnlyList<AttentionRule> Candidates(IReadOnlyList<AttentionRule> all) => [.. all.Where(EndToEndModel.Supports)];

    public Outcome Run(ParseResult parse, IAnsiConsole console, FileInfo modelFile, QualityModel quality, PlanSearch.Plan plan, long[] ids, int rows, int from)
    {
        var steps = parse.GetValue(_steps);
        var model = new EndToEndModel(Llama2cCheckpoint.Load(modelFile.FullName), [.. plan.Layers.Select(o => o.Rule)], parse.GetValue(_projections));
        var original = quality.Logits(new SoftmaxRule(), ids, rows);
        var teacher = EndToEndTuning.Probabilities(original, model.Vocab);
        EndToEndTuning.Result? result = null;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        console.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask($"tuning {model.ParameterCount:N0} numbers end to end", maxValue: steps);
                result = EndToEndTuning.Tune(model, ids, rows, teacher, from, steps, parse.GetValue(_rate), (step, loss, late) =>
                {
                    task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"tuning: step {step}/{steps}, KL {loss:F4} (from {from}: {late:F4})"));
                    task.Value = step;
                });
            });
        var took = clock.Elapsed;
        var tuned = new QualityModel(model.WithProjections(quality.Original), quality.IntraOpThreads);
        var rule = model.Rule;
        var after = NextTokenComparison.Compare(original, tuned.Logits(rule, ids, rows), ids, rows);
        return new Outcome(rule, tuned, plan.Kl, after.Bucket(from, after.Positions).Kl, result!, model.ChangesProjections, took);
    }
}
