namespace MiniDeep.Experiments;

/// <summary>
/// The output paths of a command, checked before any work: a run of minutes whose first write fails
/// (an output path that is a file, a directory that cannot be made or written) would lose all of it.
/// </summary>
public static class OutputPaths
{
    /// <summary>Makes <paramref name="path"/> a directory this process can write to, or says why it cannot.</summary>
    public static void WritableDirectory(string option, string path)
    {
        if (File.Exists(path)) throw new ArgumentException($"{option}: '{path}' is a file, not a directory");
        var probe = Path.Combine(path, $".minideep-write-check-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(path);
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"{option}: cannot write to the directory '{path}': {e.Message}");
        }
    }

    /// <summary>Checks that <paramref name="path"/> (when given) names a file whose directory can be written.</summary>
    public static void WritableFile(string option, string? path)
    {
        if (path is null) return;
        if (Directory.Exists(path)) throw new ArgumentException($"{option}: '{path}' is a directory, not a file");
        WritableDirectory(option, Path.GetDirectoryName(Path.GetFullPath(path))!);
    }
}
