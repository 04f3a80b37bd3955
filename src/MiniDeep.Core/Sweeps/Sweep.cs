using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MiniDeep.Sweeps;

/// <summary>
/// Part i of n of a sweep ("--shard i/n", i counted from 0): the units whose position k in the sweep
/// has k mod n = i. A cluster's job array runs n processes with i = 0 … n−1 (Slurm's
/// SLURM_ARRAY_TASK_ID, a Kubernetes indexed job's JOB_COMPLETION_INDEX) and a final merge.
/// </summary>
public readonly record struct Shard
{
    /// <summary>Shard <paramref name="index"/> of <paramref name="count"/>, with 0 ≤ index &lt; count.</summary>
    public Shard(int index, int count)
    {
        // Shard(5, 2) would hold no unit at all: its process would finish at once and the merge would
        // then report units missing with no hint of why.
        if (count < 1 || index < 0 || index >= count)
            throw new ArgumentOutOfRangeException(nameof(index), $"Shard: expected 0 ≤ index < count, got {index}/{count}");
        Index = index;
        Count = count;
    }

    /// <summary>Position of this shard among the others, from 0.</summary>
    public int Index { get; }

    /// <summary>Number of shards.</summary>
    public int Count { get; }

    /// <summary>The whole sweep in one process.</summary>
    public static Shard All => new(0, 1);

    /// <summary>Parses "i/n" with 0 ≤ i &lt; n.</summary>
    public static Shard Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int i)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 1 || i >= n)
            throw new FormatException($"--shard: expected i/n with 0 ≤ i < n (e.g. 0/4), got '{text}'");
        return new Shard(i, n);
    }

    /// <summary>Whether the unit at position <paramref name="k"/> belongs to this shard.</summary>
    public bool Contains(int k) => Count > 0 ? k % Count == Index
        : throw new InvalidOperationException("Shard: default(Shard) is not a shard; use Shard.All or new Shard(i, n)");

    /// <inheritdoc/>
    public override string ToString() => $"{Index}/{Count}";
}

/// <summary>
/// A sweep: a fixed list of named units of work (seeds, conditions, seeds × conditions), each
/// computing a result that serializes to JSON. <see cref="Run"/> computes one shard's units and writes
/// them to one file; <see cref="Merge"/> reads the files of all shards, checks that every unit is there
/// exactly once and that they all describe the same sweep, and returns the results in the sweep's
/// order. Nothing is distributed here: the processes share nothing but the output directory, so any
/// job-array scheduler can run them.
/// </summary>
/// <typeparam name="T">A unit's result (serialized with System.Text.Json).</typeparam>
/// <example><code>
/// var sweep = new Sweep&lt;double&gt;("seeds", Enumerable.Range(0, 20).Select(s => $"seed{s}").ToList(),
///     unit => TrainAndTest(ulong.Parse(unit[4..])));
/// sweep.Run(Shard.Parse(args[0]), "out/");                        // in each of n processes
/// IReadOnlyList&lt;double&gt; all = sweep.Merge("out/");              // once, after all of them
/// </code></example>
public sealed class Sweep<T>
{
    private readonly Func<string, T> _run;

    /// <summary>A sweep named <paramref name="name"/> (it names the shard files) over <paramref name="units"/>,
    /// which must be distinct; <paramref name="run"/> computes one unit's result from its name.</summary>
    public Sweep(string name, IReadOnlyList<string> units, Func<string, T> run)
    {
        if (string.IsNullOrWhiteSpace(name) || name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
            throw new ArgumentException($"Sweep: '{name}' cannot name a file");
        if (units.Count == 0) throw new ArgumentException($"Sweep '{name}': no units");
        var duplicate = units.GroupBy(u => u).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"Sweep '{name}': unit '{duplicate.Key}' appears {duplicate.Count()} times");
        Name = name;
        Units = units;
        _run = run;
    }

    /// <summary>The sweep's name.</summary>
    public string Name { get; }

    /// <summary>Every unit, in order.</summary>
    public IReadOnlyList<string> Units { get; }

    /// <summary>The units of one shard, in the sweep's order.</summary>
    public IReadOnlyList<string> UnitsOf(Shard shard) => Units.Where((_, k) => shard.Contains(k)).ToList();

    /// <summary>The file a shard writes in <paramref name="directory"/>.</summary>
    public string FileOf(string directory, Shard shard) => Path.Combine(directory, $"{Name}.shard-{shard.Index}-of-{shard.Count}.json");

    /// <summary>
    /// Computes the shard's units and writes their results to <see cref="FileOf"/>, rewriting the file
    /// (atomically) after every unit, so a killed job loses at most the unit it was on and, run again,
    /// continues where it stopped. Returns the shard's results by unit.
    /// </summary>
    public IReadOnlyDictionary<string, T> Run(Shard shard, string directory, TextWriter? log = null)
    {
        Directory.CreateDirectory(directory);
        string file = FileOf(directory, shard);
        var done = new Dictionary<string, JsonNode?>();
        if (File.Exists(file))
        {
            var previous = Read(file);
            if (previous.UnitsHash != Hash(Units))
                throw new InvalidDataException($"Sweep '{Name}': {file} holds results of a sweep with a different list of units; move it away to start over");
            done = previous.Results;
        }
        var results = new Dictionary<string, T>();
        foreach (var unit in UnitsOf(shard))
        {
            if (done.TryGetValue(unit, out var saved))
            {
                results[unit] = saved.Deserialize<T>()!;
                log?.WriteLine($"  {Name} {unit}: already in {Path.GetFileName(file)}");
                continue;
            }
            var result = _run(unit);
            results[unit] = result;
            done[unit] = JsonSerializer.SerializeToNode(result);
            Write(file, shard, done);
        }
        if (!File.Exists(file)) Write(file, shard, done);
        return results;
    }

    /// <summary>
    /// The results of every unit, in the sweep's order, read from the shard files in
    /// <paramref name="directory"/>. Throws, naming them, when units are missing, appear in two files,
    /// or when a file was written by a different sweep (another unit list) or a different shard count.
    /// </summary>
    public IReadOnlyList<T> Merge(string directory)
    {
        var files = Directory.Exists(directory) ? Directory.GetFiles(directory, $"{Name}.shard-*-of-*.json").Order(StringComparer.Ordinal).ToList() : [];
        if (files.Count == 0) throw new FileNotFoundException($"Sweep '{Name}': no shard files ({Name}.shard-i-of-n.json) in {directory}");
        var byUnit = new Dictionary<string, (JsonNode? Result, string File)>();
        int? count = null;
        var shardsSeen = new HashSet<int>();
        foreach (var file in files)
        {
            var (shard, unitsHash, results) = Read(file);
            if (unitsHash != Hash(Units))
                throw new InvalidDataException($"Sweep '{Name}': {Path.GetFileName(file)} was written by a sweep with a different list of units");
            if (count is { } c && c != shard.Count)
                throw new InvalidDataException($"Sweep '{Name}': shard files of {c} and of {shard.Count} shards are mixed in {directory}");
            count = shard.Count;
            shardsSeen.Add(shard.Index);
            foreach (var (unit, result) in results)
            {
                if (byUnit.TryGetValue(unit, out var other))
                    throw new InvalidDataException($"Sweep '{Name}': unit '{unit}' is in both {Path.GetFileName(other.File)} and {Path.GetFileName(file)}");
                byUnit[unit] = (result, file);
            }
        }
        var missing = Units.Where(u => !byUnit.ContainsKey(u)).ToList();
        if (missing.Count > 0)
        {
            var absentShards = Enumerable.Range(0, count!.Value).Where(i => !shardsSeen.Contains(i)).ToList();
            throw new InvalidDataException($"Sweep '{Name}': {missing.Count} of {Units.Count} units have no result ({string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", …" : "")})" +
                (absentShards.Count > 0 ? $"; shards {string.Join(", ", absentShards.Select(i => $"{i}/{count}"))} wrote no file" : "; a shard did not finish"));
        }
        return Units.Select(u => byUnit[u].Result.Deserialize<T>()!).ToList();
    }

    private void Write(string file, Shard shard, Dictionary<string, JsonNode?> results)
    {
        var json = new JsonObject
        {
            ["sweep"] = Name,
            ["shard"] = shard.ToString(),
            ["units_hash"] = Hash(Units),
            ["results"] = new JsonObject(Units.Where(results.ContainsKey).Select(u => KeyValuePair.Create(u, results[u]?.DeepClone()))),
        };
        IO.AtomicFile.WriteAllText(file, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private (Shard Shard, string UnitsHash, Dictionary<string, JsonNode?> Results) Read(string file)
    {
        JsonNode root;
        try { root = JsonNode.Parse(File.ReadAllText(file)) ?? throw new InvalidDataException("empty"); }
        catch (JsonException e) { throw new InvalidDataException($"Sweep '{Name}': {Path.GetFileName(file)} is not valid JSON: {e.Message}", e); }
        if (root["sweep"]?.GetValue<string>() != Name)
            throw new InvalidDataException($"Sweep '{Name}': {Path.GetFileName(file)} belongs to sweep '{root["sweep"]}'");
        var shard = Shard.Parse(root["shard"]?.GetValue<string>() ?? "");
        var results = root["results"]?.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value?.DeepClone()) ?? [];
        return (shard, root["units_hash"]?.GetValue<string>() ?? "", results);
    }

    // A short fingerprint of the unit list (FNV-1a, 64 bits): shards of different sweeps must not merge.
    private static string Hash(IReadOnlyList<string> units)
    {
        ulong h = 14695981039346656037;
        foreach (byte b in Encoding.UTF8.GetBytes(string.Join('\n', units)))
        {
            h ^= b;
            h *= 1099511628211;
        }
        return h.ToString("x16", CultureInfo.InvariantCulture);
    }
}
