using System.Runtime.InteropServices;
using System.Text;
using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Operators.Runtime;

/// <summary>Read access to one node's attributes while its kernel is being created.</summary>
public readonly unsafe ref struct KernelInfo
{
    private readonly OrtApi _api;
    private readonly nint _info;

    internal KernelInfo(OrtApi api, nint info)
    {
        _api = api;
        _info = info;
    }

    public string NodeName
    {
        get
        {
            nuint size = 0;
            var status = _api.KernelInfoGetNodeName(_info, null, &size);
            if (status != 0)
            {
                _api.ReleaseStatus(status);
                return "";
            }
            var buffer = new byte[(int)size];
            fixed (byte* p = buffer)
            {
                StatusBoundary.ThrowIfError(_api, _api.KernelInfoGetNodeName(_info, p, &size));
            }
            return Encoding.UTF8.GetString(buffer, 0, Math.Max(0, (int)size - 1));
        }
    }

    public bool TryGetInt(string name, out long value)
    {
        var utf8 = Utf8(name);
        long result = 0;
        nint status;
        fixed (byte* p = utf8)
        {
            status = _api.KernelInfoGetAttributeInt64(_info, p, &result);
        }
        value = result;
        return Present(status);
    }

    public bool TryGetFloat(string name, out float value)
    {
        var utf8 = Utf8(name);
        float result = 0;
        nint status;
        fixed (byte* p = utf8)
        {
            status = _api.KernelInfoGetAttributeFloat(_info, p, &result);
        }
        value = result;
        return Present(status);
    }

    public bool TryGetString(string name, out string value)
    {
        var utf8 = Utf8(name);
        value = "";
        fixed (byte* p = utf8)
        {
            nuint size = 0;
            // A first call with no buffer reports the size including the terminating NUL.
            if (!Present(_api.KernelInfoGetAttributeString(_info, p, null, &size)))
            {
                return false;
            }
            var buffer = new byte[(int)size];
            fixed (byte* b = buffer)
            {
                StatusBoundary.ThrowIfError(_api, _api.KernelInfoGetAttributeString(_info, p, b, &size));
            }
            value = Encoding.UTF8.GetString(buffer, 0, Math.Max(0, (int)size - 1));
            return true;
        }
    }

    public long GetInt(AttributeSpec spec) =>
        TryGetInt(spec.Name, out var v) ? v : Convert.ToInt64(spec.Default ?? throw Missing(spec));

    public float GetFloat(AttributeSpec spec) =>
        TryGetFloat(spec.Name, out var v) ? v : Convert.ToSingle(spec.Default ?? throw Missing(spec));

    public string GetString(AttributeSpec spec) =>
        TryGetString(spec.Name, out var v) ? v : (string)(spec.Default ?? throw Missing(spec));

    private static OrtException Missing(AttributeSpec spec) =>
        OrtException.InvalidArgument($"required attribute '{spec.Name}' is missing");

    private bool Present(nint status)
    {
        if (status == 0)
        {
            return true;
        }
        // ORT reports a missing attribute (or one of another type) as an error status; the caller falls back.
        _api.ReleaseStatus(status);
        return false;
    }

    private static byte[] Utf8(string s)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, bytes);
        return bytes;
    }
}
