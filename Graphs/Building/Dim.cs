using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Building;

/// <summary>A dimension of a declared graph input or output: a fixed size or a symbolic name such as "batch".</summary>
public readonly record struct Dim(long? Value, string? Symbol)
{
    public static implicit operator Dim(long value) => new(value, null);

    public static implicit operator Dim(int value) => new(value, null);

    public static implicit operator Dim(string symbol) => new(null, symbol);

    public TensorShapeProto.Types.Dimension ToProto() =>
        Value is { } v ? new() { DimValue = v } : new() { DimParam = Symbol ?? "" };
}
