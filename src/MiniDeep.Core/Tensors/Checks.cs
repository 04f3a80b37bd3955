namespace MiniDeep;

/// <summary>Argument checks shared across the library, so that every op words the same refusal alike.</summary>
internal static class Checks
{
    // A negative or NaN rate, weight or epsilon does not fail anywhere: it trains uphill, flips a penalty
    // into a push, or fills the weights with NaN, silently.
    internal static double NonNegative(double value, string what, string op) =>
        value >= 0 && double.IsFinite(value) ? value : throw new ArgumentOutOfRangeException(null, $"{op}: the {what} must be finite and at least 0, got {value}");
}
