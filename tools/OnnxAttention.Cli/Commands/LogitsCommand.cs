using System.CommandLine;
using Google.Protobuf;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Quality;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Host.Swapped;

namespace OnnxAttention.Cli.Commands;

/// <summary><c>onnx-attention logits --model MODEL [--attention RULE] --input-ids IDS.pb --out LOGITS.pb [--step-by-step]</c>.</summary>
public static class LogitsCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "the decoder: an exported .onnx or a llama2.c .bin; a model already swapped (convert, calibrate) runs as it is", Required = true };
        var rule = new Option<string?>("--attention") { Description = AttentionRule.Known + " (required unless the model is already swapped)" };
        var ids = new Option<FileInfo>("--input-ids") { Description = "ONNX TensorProto of int64 ids [batch, seq]", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "where to write float32 logits [batch, seq, vocab] as a TensorProto", Required = true };
        var maxMemory = new Option<string?>("--max-memory") { Description = "cap ONNX Runtime's CPU memory for the session (bytes, or 512M, 2G; at most 4G - 1); without it, a statically known tensor over 4 GiB is refused" };
        var stepByStep = new Option<bool>("--step-by-step") { Description = "feed one token per call, carrying the state" };
        var ep = new Option<string>("--ep") { Description = "execution provider: cpu, cuda or cuda:N (cuda needs the GPU build)", DefaultValueFactory = _ => "cpu" };
        var maskOption = new Option<FileInfo>("--attention-mask") { Description = "ONNX TensorProto [batch, seq] (1 = token, 0 = pad); default all ones" };
        var positionsOption = new Option<FileInfo>("--position-ids") { Description = "ONNX TensorProto int64 [batch, seq] for a model with position_ids; default cumsum(mask) - 1" };
        var command = new Command("logits", "Swap a model's attention (or take an already swapped one), run it on ids and write the logits.")
        {
            model, rule, ids, output, stepByStep, ep, maxMemory, maskOption, positionsOption,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            CliErrors.RefuseOverwritingAnInput("--out", parse.GetValue(output)!, parse.GetValue(model)!, parse.GetValue(ids)!);
            if (parse.GetValue(maxMemory) is { } cap) SessionMemory.Cap(SessionMemory.ParseSize(cap));
            var (proto, rules) = ModelArguments.Swapped(parse.GetValue(model)!.FullName, parse.GetValue(rule));
            var (values, batch, seq) = IdsFile.Read(parse.GetValue(ids)!.FullName, "--input-ids");
            IdsFile.CheckRange(values, seq, DeclaredVocab(proto), "--input-ids");
            var mask = parse.GetValue(maskOption) is { } maskFile ? ReadRows("--attention-mask", maskFile, batch, seq) : null;
            if (mask is not null && mask.Any(m => m != 0 && m != 1)) throw new GraphException("--attention-mask must hold only 0 and 1");
            var positions = parse.GetValue(positionsOption) is { } positionsFile ? ReadRows("--position-ids", positionsFile, batch, seq) : null;
            using var runner = new SwappedModelRunner(proto, target: ExecutionTarget.Parse(parse.GetValue(ep)!));
            var contract = runner.Contract!;
            SwappedModelRunner.CheckPadding(contract, mask);
            if (positions is not null && contract.PositionIdsInput is null)
            {
                // The swapped model computes each row's positions as 0 .. S - 1 itself: given ones must agree.
                if (positions.Where((p, i) => p != i % seq).Any())
                {
                    throw new GraphException($"--position-ids differ from 0 .. {seq - 1} on every row, but the model swapped with '{contract.Rule}' computes its positions itself (it has no position_ids input)");
                }
                positions = null;
            }
            var step = parse.GetValue(stepByStep);
            var logits = runner.Logits(values, batch, step ? 1 : Math.Max(1, seq), mask: mask, positions: positions);
            var vocab = seq == 0 ? 0 : logits.Length / (batch * seq);
            if (mask is not null)
            {
                // Pad positions carry no token: their logits are written as 0.
                for (var i = 0; i < mask.Length; i++) if (mask[i] == 0) Array.Clear(logits, i * vocab, vocab);
            }
            var result = Tensors.Float("logits", logits, batch, seq, vocab);
            File.WriteAllBytes(parse.GetValue(output)!.FullName, result.ToByteArray());
            Console.WriteLine($"{rules}; {(step ? "token by token" : "whole sequence")}; " +
                              $"wrote logits [{batch}, {seq}, {vocab}] to {parse.GetValue(output)!.FullName}");
            return 0;
        }));
        return command;
    }

    /// <summary>An integer TensorProto (int64, int32 or bool) of exactly [batch, seq], as int64.</summary>
    private static long[] ReadRows(string option, FileInfo file, int batch, int seq)
    {
        if (!file.Exists) throw new FileNotFoundException($"{option} '{file.FullName}' does not exist");
        TensorProto t;
        try
        {
            t = TensorProto.Parser.ParseFrom(File.ReadAllBytes(file.FullName));
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"{option} '{file.FullName}' is not an ONNX TensorProto: {e.Message}");
        }
        if (t.Dims.Count != 2 || t.Dims[0] != batch || t.Dims[1] != seq)
        {
            throw new GraphException($"{option} has shape [{string.Join(", ", t.Dims)}]; expected [batch, seq] = [{batch}, {seq}] like --input-ids");
        }
        var values = ConstantReader.TryInts(t);
        if (values is null || values.Length != batch * seq) throw new GraphException($"{option} must hold {batch * seq} integers (int64, int32 or bool)");
        return values;
    }

    private static long? DeclaredVocab(ModelProto swapped)
    {
        var logits = swapped.Graph.Output.FirstOrDefault(o => o.Name == ModelContract.Read(swapped).LogitsOutput)?.Type?.TensorType?.Shape?.Dim;
        return logits is { Count: 3 } && logits[2].HasDimValue ? logits[2].DimValue : null;
    }
}
