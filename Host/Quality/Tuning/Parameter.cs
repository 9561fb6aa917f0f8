namespace OnnxAttention.Host.Quality.Tuning;

/// <summary>A trainable array: its values (changed in place by the optimiser) and its step size relative to the base rate.</summary>
internal sealed class Parameter(string name, float[] value, float rate)
{
    public string Name { get; } = name;

    public float[] Value { get; } = value;

    public float Rate { get; } = rate;

    /// <summary>Its slot in a gradient set, given when the model collects its parameters.</summary>
    public int Index { get; set; } = -1;
}
