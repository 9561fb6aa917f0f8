using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Registration;

namespace OnnxAttention.Tests.Support;

/// <summary>
/// Runs a swapped float32 model's attention on 16-bit activations: each of our operator nodes gets its activation
/// inputs (those its schema types T: query, key, value, gates) through a Cast to the given type, and its activation
/// outputs back to float32 through a Cast; state stays float32 as the operators define it. This is what a model
/// exported in bfloat16 feeds our operators, with the rest of the network left in float32 (ONNX Runtime's CPU
/// provider has no bfloat16 MatMul, so a whole bfloat16 decoder cannot run here).
/// </summary>
public static class OperatorActivationCasts
{
    public static int Apply(ModelProto swapped, TensorProto.Types.DataType type)
    {
        var graph = swapped.Graph;
        var nodes = graph.Node.ToList();
        graph.Node.Clear();
        var wrapped = 0;
        foreach (var node in nodes)
        {
            var schema = OperatorRegistry.Operators.Select(o => o.Schema)
                .FirstOrDefault(s => s.Domain == node.Domain && s.Name == node.OpType && s.RunsOnCpu && s.Inputs.Any(i => i.ElementType == OrtElementType.Float16));
            if (schema is null)
            {
                graph.Node.Add(node);
                continue;
            }
            wrapped++;
            var after = new List<NodeProto>();
            for (var i = 0; i < node.Input.Count && i < schema.Inputs.Count; i++)
            {
                if (node.Input[i].Length == 0 || schema.Inputs[i].ElementType != OrtElementType.Float16) continue;
                var cast = $"{node.Input[i]}_as_{type}_{node.Name}_{i}";
                graph.Node.Add(Cast(node.Input[i], cast, type));
                node.Input[i] = cast;
            }
            for (var i = 0; i < node.Output.Count && i < schema.Outputs.Count; i++)
            {
                if (node.Output[i].Length == 0 || schema.Outputs[i].ElementType != OrtElementType.Float16) continue;
                var raw = $"{node.Output[i]}_as_{type}";
                after.Add(Cast(raw, node.Output[i], TensorProto.Types.DataType.Float));
                node.Output[i] = raw;
            }
            graph.Node.Add(node);
            graph.Node.AddRange(after);
        }
        return wrapped;
    }

    private static NodeProto Cast(string input, string output, TensorProto.Types.DataType to) => new()
    {
        OpType = "Cast",
        Name = output,
        Input = { input },
        Output = { output },
        Attribute = { Attr.Int("to", (int)to) },
    };
}
