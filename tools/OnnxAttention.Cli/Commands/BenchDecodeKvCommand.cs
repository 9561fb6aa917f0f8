using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Host.Diagnostics;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// <c>onnx-attention bench-decode-kv</c> (hidden): decode steps of a KV-cache model in the genai builder's form
/// (input_ids, attention_mask, past_key_values.N.key/value -> logits, present.N.key/value) on ONNX Runtime, starting
/// from a synthetic cache of N tokens instead of a prefill. Each step feeds the presents back as the next pasts, which
/// is what onnxruntime-genai does with such a model when past and present do not share a buffer (its default on the
/// CPU): ORT's GroupQueryAttention copies the past into a present one token longer, then attends over it. The work
/// of a step does not depend on the cache's values, so this gives the decode speed at a context whose prefill would
/// take hours here (a 64k prefill of the 100M Llama needs ORT's quadratic attention over 2 billion query-key pairs
/// per head and layer).
/// </summary>
public static class BenchDecodeKvCommand
{
    public static Command Create()
    {
        var model = new Argument<FileInfo>("model") { Description = "model.onnx in the genai builder's form (e.g. from genai-llama)" };
        var contexts = new Option<string>("--contexts") { Description = "cache lengths, comma-separated", DefaultValueFactory = _ => "1024,65536" };
        var steps = new Option<int>("--steps") { Description = "decode steps timed per context", DefaultValueFactory = _ => 8 };
        var repeats = new Option<int>("--repeats") { Description = "rounds over the contexts", DefaultValueFactory = _ => 1 };
        var command = new Command("bench-decode-kv", "Decode tokens/s of a genai-form KV-cache model on ORT from a synthetic cache (no prefill).") { model, contexts, steps, repeats };
        command.Hidden = true;
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var file = parse.GetValue(model)!;
            if (!file.Exists) throw new FileNotFoundException($"model '{file.FullName}' does not exist");
            var lengths = parse.GetValue(contexts)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(t => int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : throw new ArgumentException($"--contexts: '{t}' is not a positive integer")).ToArray();
            var stepCount = parse.GetValue(steps) is var s and > 0 ? s : throw new ArgumentException("--steps must be >= 1");
            var (session, layers, kvHeads, headSize) = Open(file.FullName);
            using (session)
            {
                for (var round = 1; round <= Math.Max(1, parse.GetValue(repeats)); round++)
                {
                    foreach (var n in lengths)
                    {
                        var seconds = Decode(session.Session, layers, kvHeads, headSize, n, stepCount);
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"round {round}, cache {n} tokens: {stepCount} decode steps in {seconds.Sum():F2} s = {stepCount / seconds.Sum():F2} tokens/s (step median {Median(seconds) * 1e3:F0} ms, first {seconds[0] * 1e3:F0} ms)"));
                    }
                }
            }
            return 0;
        }));
        return command;
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static (OwnedSession Session, int Layers, int KvHeads, int HeadSize) Open(string path)
    {
        var proto = ModelFile.Load(path);
        var pasts = proto.Graph.Input.Where(i => Regex.IsMatch(i.Name, @"^past_key_values\.\d+\.key$")).ToList();
        if (pasts.Count == 0) throw new ArgumentException($"model '{path}' has no past_key_values.N.key inputs (not in the genai builder's KV-cache form)");
        var dims = pasts[0].Type.TensorType.Shape.Dim;
        if (dims.Count != 4 || !dims[1].HasDimValue || !dims[3].HasDimValue) throw new ArgumentException($"model '{path}': {pasts[0].Name} is not [batch, kv_heads, past, head_size] with fixed heads and head size");
        var session = SessionFactory.Create(proto, 0);
        return (session, pasts.Count, (int)dims[1].DimValue, (int)dims[3].DimValue);
    }

    /// <summary>Seconds of each step, from a cache of <paramref name="n"/> tokens of seeded values.</summary>
    private static double[] Decode(InferenceSession session, int layers, int kvHeads, int headSize, int n, int steps)
    {
        var random = new Random(11);
        var pasts = new List<OrtValue>();
        var seconds = new double[steps];
        try
        {
            for (var i = 0; i < 2 * layers; i++)
            {
                var data = new float[(long)kvHeads * n * headSize];
                for (var j = 0; j < data.Length; j++) data[j] = (float)(random.NextDouble() - 0.5);
                pasts.Add(OrtValue.CreateTensorValueFromMemory(data, [1, kvHeads, n, headSize]));
            }
            ProcessMemory.Compact();
            var outputNames = new[] { "logits" }.Concat(Enumerable.Range(0, layers).SelectMany(l => new[] { $"present.{l}.key", $"present.{l}.value" })).ToArray();
            var inputNames = new[] { "input_ids", "attention_mask" }.Concat(Enumerable.Range(0, layers).SelectMany(l => new[] { $"past_key_values.{l}.key", $"past_key_values.{l}.value" })).ToArray();
            long token = 5;
            using var runOptions = new RunOptions();
            for (var step = 0; step < steps; step++)
            {
                var clock = Stopwatch.StartNew();
                using var ids = OrtValue.CreateTensorValueFromMemory(new[] { token }, [1, 1]);
                var maskLength = n + step + 1;
                var ones = new long[maskLength];
                Array.Fill(ones, 1L);
                using var mask = OrtValue.CreateTensorValueFromMemory(ones, [1, maskLength]);
                var outputs = session.Run(runOptions, inputNames, new[] { ids, mask }.Concat(pasts).ToArray(), outputNames);
                var logits = outputs[0].GetTensorDataAsSpan<float>();
                var best = 0;
                for (var v = 1; v < logits.Length; v++) if (logits[v] > logits[best]) best = v;
                token = best;
                foreach (var p in pasts) p.Dispose();
                pasts.Clear();
                for (var o = 1; o < outputs.Count; o++) pasts.Add(outputs[o]);
                outputs[0].Dispose();
                seconds[step] = clock.Elapsed.TotalSeconds;
            }
            return seconds;
        }
        finally
        {
            foreach (var p in pasts) p.Dispose();
        }
    }
}
