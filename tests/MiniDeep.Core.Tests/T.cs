using FsCheck.Fluent;
namespace MiniDeep.Tests; public class T1 { [Xunit.Fact] public void A() => Xunit.Assert.Equal(1, P.X); }
