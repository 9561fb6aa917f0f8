using Microsoft.ML.OnnxRuntime;
using OrtApi = OnnxAttention.Operators.Interop.OrtApi;

namespace OnnxAttention.Operators.Registration;

/// <summary>In-process registration into the managed ORT binding's session options.</summary>
public static class SessionOptionsExtensions
{
    /// <summary>
    /// Makes every OnnxAttention operator (domain <see cref="OperatorRegistry.Domain"/>) available to sessions
    /// created from <paramref name="options"/>. Safe to call on many options and from many threads.
    /// </summary>
    public static SessionOptions RegisterOnnxAttentionOperators(this SessionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        OperatorRegistry.AddTo(OrtApi.FromLoadedRuntime(), options.DangerousGetHandle());
        return options;
    }
}
