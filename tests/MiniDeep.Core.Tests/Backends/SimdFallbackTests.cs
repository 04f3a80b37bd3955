using System.Diagnostics;
using Xunit;

namespace MiniDeep.Tests.BackendTests;

/// <summary>
/// Runs the SIMD-tail, GEMM and pooling tests again in a child process with wider instruction sets switched
/// off through the runtime's own switches, so the Vector256, Vector128 and scalar paths are tested
/// on an AVX-512 machine too (on a machine without AVX-512, its switch changes nothing).
/// </summary>
public class SimdFallbackTests
{
    public static TheoryData<string, string, int> Switches => new()
    {
        { "DOTNET_EnableAVX512", "0", 8 },
        { "DOTNET_EnableAVX2", "0", 4 },
        { "DOTNET_EnableHWIntrinsic", "0", 1 },
    };

    [Theory]
    [MemberData(nameof(Switches))]
    public async Task SimdTestsPass_WithInstructionSetSwitchedOff(string variable, string value, int expectedWidth)
    {
        // A machine without the switched-off set already runs narrower: on one without AVX-512 the
        // first case is the default path (the child must still pick 8 lanes and pass).
        expectedWidth = Math.Min(expectedWidth, MiniDeep.Cpu.Gemm.VectorWidth);
        var dll = typeof(SimdTailTests).Assembly.Location;
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { dll, "-class", typeof(SimdTailTests).FullName!, "-class", typeof(GemmTests).FullName!, "-class", typeof(PoolingTests).FullName!, "-parallel", "none" })
            psi.ArgumentList.Add(a);
        psi.Environment[variable] = value;
        psi.Environment["MINIDEEP_EXPECT_VECTOR_WIDTH"] = expectedWidth.ToString();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await p.WaitForExitAsync(timeout.Token);
        string output = await stdout + await stderr;
        Assert.True(p.ExitCode == 0, $"{variable}={value}: child test run failed (exit {p.ExitCode}):\n{output}");
        Assert.Contains("Failed: 0", output);
    }
}
