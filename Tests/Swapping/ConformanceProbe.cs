using NUnit.Framework;
using OnnxAttention.Tests.Support;
namespace OnnxAttention.Tests.Swapping;
[TestFixture, Explicit]
public class ConformanceProbe
{
    [Test]
    public void RunAllOriginal()
    {
        var lines = new List<string>();
        foreach (var name in ConformanceCase.Names())
        {
            var c = ConformanceCase.Load(name);
            try
            {
                var got = c.Run(c.Model());
                var want = c.Outputs();
                var worst = 0.0;
                for (var o = 0; o < want.Count; o++)
                {
                    var w = ConformanceCase.ToFloats(want[o]);
                    for (var i = 0; i < w.Length; i++) worst = Math.Max(worst, Math.Abs(got[o][i] - w[i]) / (1 + Math.Abs(w[i])));
                }
                lines.Add($"{name}: {(worst <= 1e-3 ? "ok" : "MISMATCH")} {worst:G3}");
            }
            catch (Exception e) { lines.Add($"{name}: ERROR {e.Message.Split('\n')[0]}"); }
        }
        File.WriteAllLines("/tmp/probe/original.txt", lines);
    }
}
