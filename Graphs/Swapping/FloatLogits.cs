using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// A swapped float16 (or bfloat16) model's logits, cast to float32 at the end of the graph for hosts that sample
/// float32 (the Generator); the logits output keeps its place, under a new name.
/// </summary>
public static class FloatLogits
{
    /// <summary>Adds the Cast when the logits are 16-bit; returns whether it did.</summary>
    public static bool Apply(ModelProto swapped)
    {
        var contract = ModelContract.Read(swapped);
        var output = swapped.Graph.Output.First(o => o.Name == contract.LogitsOutput);
        if (output.Type?.TensorType?.ElemType is not ((int)TensorProto.Types.DataType.Float16 or (int)TensorProto.Types.DataType.Bfloat16)) return false;
        var names = swapped.Graph.Node.SelectMany(n => n.Output).Concat(swapped.Graph.Input.Select(i => i.Name)).ToHashSet();
        var name = output.Name + ".float32";
        while (names.Contains(name)) name += "_";
        var cast = new NodeProto { OpType = "Cast", Name = name };
        cast.Input.Add(output.Name);
        cast.Output.Add(name);
        cast.Attribute.Add(new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = (long)TensorProto.Types.DataType.Float });
        swapped.Graph.Node.Add(cast);
        output.Name = name;
        output.Type.TensorType.ElemType = (int)TensorProto.Types.DataType.Float;
        return true;
    }
}
