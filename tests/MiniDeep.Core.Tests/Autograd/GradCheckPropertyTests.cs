using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace MiniDeep.Tests.Autodiff;

/// <summary>The float64 gradient check of every differentiable op, as FsCheck properties over random
/// shapes (ranks 0–4, sizes 0–3 including 0 and 1, broadcast pairs).</summary>
public class GradCheckPropertyTests
{
    public const int FirstOrderCases = 100;
    public const int SecondOrderCases = 30;

    private static void Run(string op, int maxDim, int cases, Func<OpCase, GradCheckResult> check)
    {
        var spec = OpSpecs.Get(op);
        int ran = 0;
        var property = Prop.ForAll(Arb.From(spec.Cases(maxDim)), c =>
        {
            ran++;
            var r = check(c);
            if (!r.Passed) throw new Xunit.Sdk.XunitException($"{c.Description}: {r.Failure}");
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(cases).WithQuietOnSuccess(true), property);
        Assert.Equal(cases, ran);
    }

    [Theory]
    [MemberData(nameof(OpSpecs.Names), MemberType = typeof(OpSpecs))]
    public void Op_PassesFloat64GradCheck(string op) =>
        Run(op, 3, FirstOrderCases, c => GradCheck.Check(c.F, c.Inputs));

    [Theory]
    [MemberData(nameof(OpSpecs.Names), MemberType = typeof(OpSpecs))]
    public void Op_PassesGradGradCheck(string op) =>
        Run(op, 2, SecondOrderCases, c => GradCheck.CheckSecondOrder(c.F, c.Inputs));
}
