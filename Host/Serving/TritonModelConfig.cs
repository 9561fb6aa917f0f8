using System.Globalization;
using System.Text;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Host.Serving;

/// <summary>
/// Writes the config.pbtxt that Triton Inference Server's onnxruntime backend needs for a model using our operators:
/// every graph input and output with its type and shape (symbolic dims as -1), the custom-op library to register
/// (<c>model_operations</c>), and no server-side batching, because the state tensors carry their own batch rows and
/// the client sends each call's present state back as the next past. Derived from the graph itself so the names
/// can never drift from the model they describe.
/// </summary>
public static class TritonModelConfig
{
    public static string For(ModelProto model, string name, string libraryPath, int instances = 1)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentException.ThrowIfNullOrWhiteSpace(libraryPath);
        ArgumentOutOfRangeException.ThrowIfLessThan(instances, 1);
        var initializers = model.Graph.Initializer.Select(t => t.Name).ToHashSet();
        var text = new StringBuilder();
        text.Append("name: ").AppendLine(Quote(name));
        text.AppendLine("backend: \"onnxruntime\"");
        text.AppendLine("max_batch_size: 0");
        Tensors(text, "input", model.Graph.Input.Where(i => !initializers.Contains(i.Name)));
        Tensors(text, "output", model.Graph.Output);
        text.Append("instance_group [ { kind: KIND_CPU count: ").Append(instances).AppendLine(" } ]");
        text.Append("model_operations { op_library_filename: ").Append(Quote(libraryPath)).AppendLine(" }");
        return text.ToString();
    }

    private static void Tensors(StringBuilder text, string section, IEnumerable<ValueInfoProto> values)
    {
        var list = values.ToList();
        text.Append(section).AppendLine(" [");
        for (var i = 0; i < list.Count; i++)
        {
            var value = list[i];
            var tensor = value.Type?.TensorType ?? throw new ArgumentException($"{section} '{value.Name}' is not a tensor; Triton's onnxruntime backend takes tensors only");
            // The position input declares no shape (a scalar or one position per row); Triton gets the scalar form.
            var dims = value.Name == Graphs.Swapping.PositionOffset.InputName && tensor.Shape is null ? []
                : tensor.Shape?.Dim.Select(d => d.HasDimValue ? d.DimValue.ToString(CultureInfo.InvariantCulture) : "-1").ToList()
                ?? throw new ArgumentException($"{section} '{value.Name}' has no declared rank; Triton needs one");
            text.Append("  { name: ").Append(Quote(value.Name)).Append(" data_type: ").Append(DataType(value.Name, tensor.ElemType));
            // Triton has no rank-0 tensors: a scalar travels as [1] and is reshaped to [] for the model.
            text.Append(dims.Count == 0 ? " dims: [ 1 ] reshape: { shape: [ ] }" : $" dims: [ {string.Join(", ", dims)} ]");
            text.AppendLine(i + 1 < list.Count ? " }," : " }");
        }
        text.AppendLine("]");
    }

    private static string DataType(string name, int elementType) => (TensorProto.Types.DataType)elementType switch
    {
        TensorProto.Types.DataType.Float => "TYPE_FP32",
        TensorProto.Types.DataType.Float16 => "TYPE_FP16",
        TensorProto.Types.DataType.Bfloat16 => "TYPE_BF16",
        TensorProto.Types.DataType.Double => "TYPE_FP64",
        TensorProto.Types.DataType.Int64 => "TYPE_INT64",
        TensorProto.Types.DataType.Int32 => "TYPE_INT32",
        TensorProto.Types.DataType.Int16 => "TYPE_INT16",
        TensorProto.Types.DataType.Int8 => "TYPE_INT8",
        TensorProto.Types.DataType.Uint8 => "TYPE_UINT8",
        TensorProto.Types.DataType.Bool => "TYPE_BOOL",
        var other => throw new ArgumentException($"tensor '{name}' has element type {other}, which this config writer does not map to a Triton type"),
    };

    private static string Quote(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
}
