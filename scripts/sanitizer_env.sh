# Sourced by scripts/test_sanitizers.sh: how the sanitizer runtimes report (docs/trust.md).
#  - ASan: stop at the first error; no use-after-return checks (SystemC runs its
#    processes on stacks of its own; fake stacks for returned frames do not follow those
#    switches). Leaks are checked (LeakSanitizer), with no suppressions.
#  - UBSan: the build uses -fno-sanitize-recover, so any report ends the test program;
#    print the stack that led there.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_stack_use_after_return=0:detect_leaks=1:abort_on_error=1:symbolize=1}"
#  - LSan: thread stacks are not scanned for pointers (use_stacks=0). libsystemc announces
#    its coroutine stack switches to ASan, so at exit LeakSanitizer may take a coroutine
#    stack, guard pages and all, for the main thread's; on some kernels its tracer then
#    faults reading a guard page ("Tracer caught signal 11", a fatal error after a test
#    that passed). Without stack roots a leak is never hidden; an object held only by a
#    stack frame at exit would be reported (a test child that exits from inside a frame
#    uses _exit).
export LSAN_OPTIONS="${LSAN_OPTIONS:-use_stacks=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
