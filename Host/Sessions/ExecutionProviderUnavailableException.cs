namespace OnnxAttention.Host.Sessions;

/// <summary>
/// The execution provider asked for cannot be had: this build has no CUDA, or ORT could not load or start its CUDA
/// provider (no driver, no device, missing CUDA libraries). The message is one line a user can act on.
/// </summary>
public sealed class ExecutionProviderUnavailableException(string message, Exception? inner = null) : InvalidOperationException(message, inner);
