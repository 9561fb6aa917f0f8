namespace OnnxAttention.Host.Sessions;

/// <summary>Where a session runs: ORT's CPU execution provider, or its CUDA one on a device (GPU build only).</summary>
public sealed record ExecutionTarget(bool IsCuda, int DeviceId)
{
    public static ExecutionTarget Cpu { get; } = new(false, 0);

    public static ExecutionTarget Cuda(int deviceId = 0) =>
        deviceId >= 0 ? new(true, deviceId) : throw new ArgumentException($"a CUDA device id is >= 0, got {deviceId}");

    /// <summary>The CLI's spelling: <c>cpu</c>, <c>cuda</c> (device 0) or <c>cuda:N</c>.</summary>
    public static ExecutionTarget Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "cpu" => Cpu,
        "cuda" => Cuda(),
        var t when t.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(t[5..], out var id) && id >= 0 => Cuda(id),
        _ => throw new ArgumentException($"--ep '{text}' is not an execution provider: cpu, cuda or cuda:N"),
    };

    public override string ToString() => IsCuda ? $"cuda:{DeviceId}" : "cpu";
}
