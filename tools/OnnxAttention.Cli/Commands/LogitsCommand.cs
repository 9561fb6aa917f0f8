using System.CommandLine;
using Google.Protobuf;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Swapped;

namespace OnnxAttention.Cli.Commands;

/// <summary><c>onnx-attention logits --model MODEL --attention RULE --input-ids IDS.pb --out LOGITS.pb [--step-by-step]</c>.</summary>
public static class LogitsCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "the exported decoder (.onnx)", Required = true };
        var rule = new Option<string>("--attention") { Description = AttentionRule.Known, Required = true };
        var ids = new Option<FileInfo>("--input-ids") { Description = "ONNX TensorProto of int64 ids [batch, seq]", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "where to write float32 logits [batch, seq, vocab] as a TensorProto", Required = true };
        var stepByStep = new Option<bool>("--step-by-step") { Description = "feed one token per call, carrying the state" };
        var command = new Command("logits", "Swap a model's attention, run it on ids and write the logits.") { model, rule, ids, output, stepByStep };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            CliErrors.RefuseOverwritingAnInput("--out", parse.GetValue(output)!, parse.GetValue(model)!, parse.GetValue(ids)!);
            var proto = ModelFile.Load(parse.GetValue(model)!.FullName);
            var report = AttentionSwapper.Swap(proto, AttentionRule.Parse(parse.GetValue(rule)!));
            var idsPath = parse.GetValue(ids)!.FullName;
            if (!File.Exists(idsPath)) throw new FileNotFoundException($"--input-ids '{idsPath}' does not exist");
            TensorProto idsTensor;
            try
            {
                idsTensor = TensorProto.Parser.ParseFrom(File.ReadAllBytes(idsPath));
            }
            catch (InvalidProtocolBufferException e)
            {
                throw new InvalidDataException($"--input-ids '{idsPath}' is not an ONNX TensorProto: {e.Message}");
            }
            if (idsTensor.Dims.Count != 2)
            {
                throw new GraphException($"--input-ids must be int64 [batch, seq], got shape [{string.Join(", ", idsTensor.Dims)}]");
            }
            var values = Tensors.ToInt64Array(idsTensor);
            var shape = $"[{string.Join(", ", idsTensor.Dims)}]";
            if (idsTensor.Dims[0] < 1 || idsTensor.Dims[1] < 1 || idsTensor.Dims[0] * idsTensor.Dims[1] > int.MaxValue)
            {
                throw new GraphException($"--input-ids has shape {shape}; it needs at least one row and one token per row");
            }
            int batch = (int)idsTensor.Dims[0], seq = (int)idsTensor.Dims[1];
            if (values.Length != batch * seq) throw new GraphException($"--input-ids declares shape {shape} ({batch * seq} ids) but holds {values.Length}");
            CheckIds(values, seq, DeclaredVocab(proto));
            using var runner = new SwappedModelRunner(proto);
            var step = parse.GetValue(stepByStep);
            var logits = runner.Logits(values, batch, step ? 1 : Math.Max(1, seq));
            var vocab = seq == 0 ? 0 : logits.Length / (batch * seq);
            var result = Tensors.Float("logits", logits, batch, seq, vocab);
            File.WriteAllBytes(parse.GetValue(output)!.FullName, result.ToByteArray());
            Console.WriteLine($"{report.Replaced.Count} attention layer(s) -> {report.Rule.Spelling}; {(step ? "token by token" : "whole sequence")}; " +
                              $"wrote logits [{batch}, {seq}, {vocab}] to {parse.GetValue(output)!.FullName}");
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// Ids outside [0, vocab) refused before running: ONNX Gather reads a negative index from the end of the table, so
    /// -1 would silently give the logits of the last token.
    /// </summary>
    private static void CheckIds(long[] values, int seq, long? vocab)
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] < 0 || values[i] >= (vocab ?? long.MaxValue))
            {
                throw new GraphException($"--input-ids holds token {values[i]} at row {i / seq}, position {i % seq}; token ids must be in [0, {(vocab is { } v ? v.ToString() : "vocab")})");
            }
        }
    }

    private static long? DeclaredVocab(ModelProto swapped)
    {
        var logits = swapped.Graph.Output.FirstOrDefault(o => o.Name == ModelContract.Read(swapped).LogitsOutput)?.Type?.TensorType?.Shape?.Dim;
        return logits is { Count: 3 } && logits[2].HasDimValue ? logits[2].DimValue : null;
    }
}
