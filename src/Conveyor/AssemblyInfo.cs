// The wire readers stackalloc small scratch buffers on every message and always write before they read them.
[module: System.Runtime.CompilerServices.SkipLocalsInit]
