namespace OnnxAttention.Operators.Cuda;

/// <summary>One preprocessor define a kernel is specialised on, passed to NVRTC as -DNAME=VALUE.</summary>
public readonly record struct KernelDefine
{
    public KernelDefine(string name, string value)
    {
        if (name.Length == 0 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') || char.IsAsciiDigit(name[0]))
        {
            throw new ArgumentException($"'{name}' is not a C identifier", nameof(name));
        }
        if (value.Length == 0 || value.Any(c => char.IsWhiteSpace(c) || c == '"'))
        {
            throw new ArgumentException($"define {name}: value '{value}' is empty or has spaces or quotes", nameof(value));
        }
        Name = name;
        Value = value;
    }

    public KernelDefine(string name, long value)
        : this(name, value.ToString(System.Globalization.CultureInfo.InvariantCulture))
    {
    }

    public KernelDefine(string name, bool value)
        : this(name, value ? 1 : 0)
    {
    }

    public string Name { get; }

    public string Value { get; }

    public string Option => $"-D{Name}={Value}";

    public override string ToString() => Option;
}
