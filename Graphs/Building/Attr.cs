using Google.Protobuf;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Graphs.Building;

/// <summary>Constructors for node attributes.</summary>
public static class Attr
{
    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto String(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    /// <summary>An attribute an operator declares (<paramref name="spec"/>), spelled with its kind.</summary>
    public static AttributeProto For(AttributeSpec spec, object value) => spec.Kind switch
    {
        AttributeKind.Int => Int(spec.Name, Convert.ToInt64(value)),
        AttributeKind.Float => Float(spec.Name, Convert.ToSingle(value)),
        _ => String(spec.Name, (string)value),
    };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    public static AttributeProto Tensor(string name, TensorProto value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Tensor, T = value };
}
