using System.Globalization;
using System.Security.Cryptography;
using MiniDeep.Data;
using MiniDeep.Nn;
using MiniDeep.Optim;

namespace MiniDeep.IO;

/// <summary>A checkpoint that cannot be used: damaged (checksum), of another format version, or for another model.</summary>
public sealed class CheckpointException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>What a training run needs to continue exactly where it stopped.</summary>
/// <param name="Model">Parameters and buffers.</param>
/// <param name="Optimizer">Its per-parameter state and learning rates, or null.</param>
/// <param name="Scheduler">Its step count, or null.</param>
/// <param name="Loader">Its epoch and position in the epoch (the order itself is a function of the sampler's seed and the epoch), or null.</param>
/// <param name="Generators">Named generators to save (seed and stream offset); the default generator and every dropout layer's generator are always saved.</param>
/// <param name="Plateau">Its best metric, bad epochs and cooldown, or null (the rates it lowered are the optimizer's).</param>
public sealed record TrainingState(Module Model, Optimizer? Optimizer = null, LrScheduler? Scheduler = null, DataLoader? Loader = null,
    IReadOnlyDictionary<string, Generator>? Generators = null, ReduceLrOnPlateau? Plateau = null);

/// <summary>
/// Checkpoints of a training run: model, optimizer state, schedule, every generator's state, the data
/// loader's position, step, epoch, a format version and a SHA-256 checksum, in one safetensors file
/// (tensors "model.*" and "optimizer.*", everything else in its string metadata). Saves are atomic
/// (<see cref="AtomicFile"/>): a crash leaves the previous checkpoint or the new one. Loading checks the
/// checksum before it changes anything, so a damaged file never half-restores a run.
/// </summary>
/// <example>
/// <code>
/// var state = new TrainingState(model, optimizer, scheduler, loader);
/// Checkpoint.Save("run.ckpt", state, step, epoch);
/// // ... later, in a new process, with freshly built objects of the same shapes:
/// var (step, epoch, _) = Checkpoint.Load("run.ckpt", state);
/// </code>
/// </example>
public static class Checkpoint
{
    /// <summary>The format version written; a file of another version is refused.</summary>
    public const int FormatVersion = 1;

    private const string Format = "minideep-checkpoint";

    // Generators by name: the caller's, the default, and each dropout, recurrent or attention layer's (by module path).
    private static Dictionary<string, Generator> Generators(TrainingState s)
    {
        var g = new Dictionary<string, Generator>(StringComparer.Ordinal) { ["default"] = Generator.Default };
        foreach (var (path, m) in s.Model.NamedModules())
            if (m is Dropout { Generator: { } dg }) g[$"module:{path}"] = dg;
            else if (m is Recurrent { DropoutGenerator: { } rg }) g[$"module:{path}"] = rg;
            else if (m is MultiheadAttention { DropoutGenerator: { } ag }) g[$"module:{path}"] = ag;
        if (s.Generators is not null)
            foreach (var (name, gen) in s.Generators) g[$"user:{name}"] = gen;
        return g;
    }

    /// <summary>Writes a checkpoint of <paramref name="state"/> at <paramref name="step"/> and <paramref name="epoch"/>, atomically.</summary>
    public static void Save(string path, TrainingState state, long step, int epoch, IReadOnlyDictionary<string, string>? extra = null)
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (k, v) in state.Model.StateDict()) tensors["model." + k] = v;
        if (state.Optimizer is { } opt)
            foreach (var (k, v) in opt.StateDict()) tensors["optimizer." + k] = v;
        var meta = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = Format,
            ["version"] = FormatVersion.ToString(CultureInfo.InvariantCulture),
            ["step"] = step.ToString(CultureInfo.InvariantCulture),
            ["epoch"] = epoch.ToString(CultureInfo.InvariantCulture),
        };
        if (state.Scheduler is { } sch) meta["scheduler.step"] = sch.StepCount.ToString(CultureInfo.InvariantCulture);
        if (state.Plateau is { } plateau)
        {
            meta["plateau.best"] = plateau.Best.ToString("R", CultureInfo.InvariantCulture);
            meta["plateau.bad_epochs"] = plateau.BadEpochs.ToString(CultureInfo.InvariantCulture);
            meta["plateau.cooldown_left"] = plateau.CooldownLeft.ToString(CultureInfo.InvariantCulture);
        }
        if (state.Loader is { } loader)
        {
            meta["loader.epoch"] = loader.Epoch.ToString(CultureInfo.InvariantCulture);
            meta["loader.position"] = loader.Position.ToString(CultureInfo.InvariantCulture);
        }
        foreach (var (name, g) in Generators(state))
            meta["generator." + name] = $"{g.Seed.ToString(CultureInfo.InvariantCulture)}:{g.Offset.ToString(CultureInfo.InvariantCulture)}";
        if (extra is not null)
            foreach (var (k, v) in extra) meta["extra." + k] = v;
        meta["checksum"] = Checksum(tensors, meta);
        SafeTensors.Save(path, tensors, meta);
    }

    // SHA-256 of the file's canonical bytes without the checksum entry: the tensors and every other field.
    private static string Checksum(IReadOnlyDictionary<string, Tensor> tensors, Dictionary<string, string> meta)
    {
        var without = meta.Where(p => p.Key != "checksum").ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(SafeTensors.Serialize(tensors, without)));
    }

    /// <summary>
    /// Restores <paramref name="state"/> from a checkpoint and returns its step, epoch and extra fields.
    /// Nothing is changed unless the file is intact (checksum), of this format version, and fits the
    /// whole state: the model's names and shapes, the optimizer's kind, groups and parameter shapes,
    /// and a saved field for the schedule, the plateau rule, the loader and every generator the state has.
    /// </summary>
    public static (long Step, int Epoch, IReadOnlyDictionary<string, string> Extra) Load(string path, TrainingState state)
    {
        Dictionary<string, Tensor> tensors;
        Dictionary<string, string> meta;
        try { (tensors, meta) = SafeTensors.Load(path); }
        catch (SafeTensorsFormatException e) { throw new CheckpointException($"checkpoint {path}: not a valid file ({e.Message})", e); }
        string Field(string key) => meta.TryGetValue(key, out var v) ? v : throw new CheckpointException($"checkpoint {path}: the field '{key}' is missing");
        if (Field("format") != Format) throw new CheckpointException($"checkpoint {path}: format '{meta["format"]}', expected '{Format}'");
        if (Field("version") != FormatVersion.ToString(CultureInfo.InvariantCulture))
            throw new CheckpointException($"checkpoint {path}: format version {meta["version"]}, this MiniDeep reads version {FormatVersion}");
        if (Checksum(tensors, meta) != Field("checksum"))
            throw new CheckpointException($"checkpoint {path}: the checksum does not match its contents: the file is damaged");

        var model = tensors.Where(p => p.Key.StartsWith("model.", StringComparison.Ordinal)).ToDictionary(p => p.Key[6..], p => p.Value);
        var optim = tensors.Where(p => p.Key.StartsWith("optimizer.", StringComparison.Ordinal)).ToDictionary(p => p.Key[10..], p => p.Value);

        // Everything is read and checked first, so that a checkpoint of another setup (another
        // optimizer, no schedule, other generators) is refused before the model or anything else changes.
        int Int(string key) => int.TryParse(Field(key), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v) && v >= 0
            ? v : throw new CheckpointException($"checkpoint {path}: the field '{key}' is '{meta[key]}', not a count");
        int? schedulerStep = state.Scheduler is null ? null : Int("scheduler.step");
        (double Best, int Bad, int Cooldown)? plateauAt = state.Plateau is null ? null
            : (double.TryParse(Field("plateau.best"), NumberStyles.Float, CultureInfo.InvariantCulture, out double best) && !double.IsNaN(best) ? best
                : throw new CheckpointException($"checkpoint {path}: the field 'plateau.best' is '{meta["plateau.best"]}', not a number"),
               Int("plateau.bad_epochs"), Int("plateau.cooldown_left"));
        (int Epoch, int Position)? loaderAt = state.Loader is null ? null : (Int("loader.epoch"), Int("loader.position"));
        var generators = new List<(Generator G, ulong Seed, ulong Offset)>();
        foreach (var (name, g) in Generators(state))
        {
            if (!meta.TryGetValue("generator." + name, out var saved))
                throw new CheckpointException($"checkpoint {path}: it holds no state for generator '{name}' (a different model or run setup?)");
            var parts = saved.Split(':');
            if (parts.Length != 2 || !ulong.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out ulong seed)
                || !ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong offset))
                throw new CheckpointException($"checkpoint {path}: the state of generator '{name}' is '{saved}', not 'seed:offset'");
            generators.Add((g, seed, offset));
        }
        long step = long.TryParse(Field("step"), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long st) ? st
            : throw new CheckpointException($"checkpoint {path}: the field 'step' is '{meta["step"]}', not a number");
        int epoch = Int("epoch");
        // Without an optimizer in the state, a full run's checkpoint restores just the model (its optimizer entries are left unread).
        if (state.Optimizer is not null && optim.Count == 0)
            throw new CheckpointException($"checkpoint {path}: it holds no optimizer state (it was saved without an optimizer)");
        Action applyOptimizer = () => { };
        try
        {
            if (state.Optimizer is { } opt) applyOptimizer = opt.PrepareLoad(optim);
            state.Model.LoadStateDict(model);   // checks every name and shape before it copies anything
        }
        catch (ArgumentException e) { throw new CheckpointException($"checkpoint {path}: {e.Message}", e); }
        applyOptimizer();
        if (state.Scheduler is { } sch) sch.StepCount = schedulerStep!.Value;
        if (state.Plateau is { } plateau) (plateau.Best, plateau.BadEpochs, plateau.CooldownLeft) = plateauAt!.Value;
        if (state.Loader is { } loader) (loader.Epoch, loader.Position) = loaderAt!.Value;
        foreach (var (g, seed, offset) in generators)
        {
            g.ManualSeed(seed);
            g.Offset = offset;
        }
        var extra = meta.Where(p => p.Key.StartsWith("extra.", StringComparison.Ordinal)).ToDictionary(p => p.Key[6..], p => p.Value);
        return (step, epoch, extra);
    }
}
