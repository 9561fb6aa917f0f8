namespace OnnxAttention.Cli.Verify;

/// <summary>A state tensor on the host: float32 or int64 (a position) elements.</summary>
public sealed record HostTensor(Array Data, long[] Shape)
{
    public HostTensor Copy() => new((Array)Data.Clone(), Shape);
}

/// <summary>What one call (or calls joined along the sequence) returned: [batch, seq, width] output and the presents.</summary>
public sealed record CallResult(float[] Output, int Batch, int Seq, IReadOnlyList<HostTensor> Presents)
{
    /// <summary>Calls one after another along the sequence: outputs joined per row, the last call's presents.</summary>
    public static CallResult Join(IReadOnlyList<CallResult> calls)
    {
        var batch = calls[0].Batch;
        var seq = calls.Sum(c => c.Seq);
        var width = calls[0].Output.Length / (batch * calls[0].Seq);
        var output = new float[(long)batch * seq * width];
        var at = 0;
        foreach (var c in calls)
        {
            for (var b = 0; b < batch; b++)
            {
                Array.Copy(c.Output, (long)b * c.Seq * width, output, ((long)b * seq + at) * width, (long)c.Seq * width);
            }
            at += c.Seq;
        }
        return new CallResult(output, batch, seq, calls[^1].Presents);
    }
}
