using System.CommandLine;
using Google.Protobuf;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Cli.Commands;

/// <summary><c>onnx-attention graph MODEL</c>: lists a model's nodes in file order, one line each.</summary>
public static class GraphCommand
{
    public static Command Create()
    {
        var model = new Argument<FileInfo>("model") { Description = "an .onnx file" };
        var command = new Command("graph", "Print every node of a model: op, name, inputs -> outputs, attributes.") { model };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var path = parse.GetValue(model)!.FullName;
            if (!File.Exists(path)) throw new FileNotFoundException($"model file '{path}' does not exist");
            ModelProto m;
            try
            {
                m = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
            }
            catch (InvalidProtocolBufferException e)
            {
                throw new InvalidDataException($"'{path}' is not a valid ONNX model: {e.Message}");
            }
            Console.WriteLine($"opsets: {string.Join(", ", m.OpsetImport.Select(o => $"{(o.Domain.Length == 0 ? "ai.onnx" : o.Domain)}:{o.Version}"))}");
            Console.WriteLine($"inputs: {string.Join(", ", m.Graph.Input.Select(i => i.Name))}");
            Console.WriteLine($"outputs: {string.Join(", ", m.Graph.Output.Select(i => i.Name))}");
            foreach (var v in m.Graph.ValueInfo)
            {
                var t = v.Type?.TensorType;
                var dims = t?.Shape?.Dim.Select(d => d.HasDimValue ? d.DimValue.ToString() : d.DimParam) ?? [];
                Console.WriteLine($"value_info {v.Name}: type {t?.ElemType} [{string.Join(", ", dims)}]");
            }
            foreach (var n in m.Graph.Node)
            {
                var attrs = string.Join(" ", n.Attribute.Select(a => $"{a.Name}={Describe(a)}"));
                Console.WriteLine($"{(n.Domain.Length > 0 ? n.Domain + "." : "")}{n.OpType} [{n.Name}] ({string.Join(", ", n.Input)}) -> ({string.Join(", ", n.Output)}) {attrs}");
            }
            return 0;
        }));
        return command;
    }

    private static string Describe(AttributeProto a) => a.Type switch
    {
        AttributeProto.Types.AttributeType.Int => a.I.ToString(),
        AttributeProto.Types.AttributeType.Float => a.F.ToString("G6"),
        AttributeProto.Types.AttributeType.String => a.S.ToStringUtf8(),
        AttributeProto.Types.AttributeType.Ints => "[" + string.Join(",", a.Ints) + "]",
        AttributeProto.Types.AttributeType.Tensor => $"tensor{(a.T.Dims.Count > 0 ? "[" + string.Join(",", a.T.Dims) + "]" : "")}",
        _ => a.Type.ToString(),
    };
}
