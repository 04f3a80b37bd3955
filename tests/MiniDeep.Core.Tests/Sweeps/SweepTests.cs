using MiniDeep.Sweeps;
using Xunit;

namespace MiniDeep.Tests.SweepTests;

public sealed class SweepTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "minideep-sweep-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    public sealed record Outcome(int Seed, double Accuracy);

    private static readonly string[] Units = Enumerable.Range(0, 7).Select(i => $"seed{i}").ToArray();

    private static Sweep<Outcome> Make(Func<string, Outcome>? run = null) =>
        new("seeds", Units, run ?? (u => new Outcome(int.Parse(u[4..]), int.Parse(u[4..]) * 0.1)));

    [Fact]
    public void ThreeShards_MergeToTheResultsOfOneProcess_InTheSweepsOrder()
    {
        var whole = Make().Run(Shard.All, Path.Combine(_dir, "one"));
        for (int i = 0; i < 3; i++) Make().Run(new Shard(i, 3), _dir);
        var merged = Make().Merge(_dir);
        Assert.Equal(Units.Select(u => whole[u]), merged);
        Assert.Equal(new[] { "seed1", "seed4" }, Make().UnitsOf(new Shard(1, 3)));
    }

    [Fact]
    public void AMissingShard_AForeignSweepAndMixedShardCounts_AreRefusedByName()
    {
        Make().Run(new Shard(0, 2), _dir);
        var e = Assert.Throws<InvalidDataException>(() => Make().Merge(_dir));
        Assert.Contains("3 of 7 units have no result", e.Message);
        Assert.Contains("shards 1/2 wrote no file", e.Message);

        Make().Run(new Shard(1, 3), _dir);
        Assert.Contains("mixed", Assert.Throws<InvalidDataException>(() => Make().Merge(_dir)).Message);

        var other = new Sweep<Outcome>("seeds", Units.Take(6).ToArray(), u => new Outcome(0, 0));
        Assert.Contains("different list of units", Assert.Throws<InvalidDataException>(() => other.Merge(_dir)).Message);
    }

    // A job killed in the middle of its shard keeps the units it finished; run again, it does the rest only.
    [Fact]
    public void AnInterruptedShard_ResumesWithoutRedoingFinishedUnits()
    {
        var calls = new List<string>();
        var failing = Make(u => { calls.Add(u); if (u == "seed4") throw new TimeoutException("killed"); return new Outcome(int.Parse(u[4..]), 1); });
        Assert.Throws<TimeoutException>(() => failing.Run(Shard.All, _dir));
        Assert.Equal(new[] { "seed0", "seed1", "seed2", "seed3", "seed4" }, calls);
        calls.Clear();
        var resumed = Make(u => { calls.Add(u); return new Outcome(int.Parse(u[4..]), 1); });
        resumed.Run(Shard.All, _dir);
        Assert.Equal(new[] { "seed4", "seed5", "seed6" }, calls);
        Assert.Equal(7, resumed.Merge(_dir).Count);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
    }

    [Theory]
    [InlineData("3/3")]
    [InlineData("-1/2")]
    [InlineData("1")]
    [InlineData("a/b")]
    [InlineData("0/0")]
    public void ShardParse_RejectsMalformedSpecs(string spec) =>
        Assert.Contains("--shard", Assert.Throws<FormatException>(() => Shard.Parse(spec)).Message);

    [Fact]
    public void DuplicateUnits_AreRefused() =>
        Assert.Contains("appears 2 times", Assert.Throws<ArgumentException>(() => new Sweep<int>("s", ["a", "b", "a"], _ => 0)).Message);
}

public class ShardTests
{
    [Theory]
    [InlineData(5, 2)]
    [InlineData(-1, 2)]
    [InlineData(0, 0)]
    public void AShardThatHoldsNoUnit_IsRefusedWhenMade(int index, int count) =>
        Assert.Contains($"got {index}/{count}", Assert.Throws<ArgumentOutOfRangeException>(() => new Shard(index, count)).Message);

    [Fact]
    public void TheDefaultShard_IsRefusedWhenUsed() =>
        Assert.Contains("Shard.All", Assert.Throws<InvalidOperationException>(() => default(Shard).Contains(0)).Message);
}
