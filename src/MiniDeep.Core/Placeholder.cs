namespace MiniDeep; public static class P { public static int X => 1; }
