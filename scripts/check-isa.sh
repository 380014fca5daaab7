#!/usr/bin/env bash
# Checks that no AVX2/AVX-512 instruction leaks into the generic kernel path, and no AVX-512 one into
# the AVX2 path:
#  1. the kernel tests and `tessera info` run under qemu-user emulating CPUs without those extensions
#     (-cpu Nehalem: SSE4.2 only; -cpu Haswell: AVX2+FMA, no AVX-512), so dispatch must pick the
#     generic / AVX2 set and every instruction executed must exist there;
#  2. the ISA kernel modules define no shared-linkage symbols (stdlib generic specialisations such
#     as pointwiseMax<SIMD8<Float>>): the linker keeps one copy of such a symbol for the whole
#     program, so an AVX-512 copy could end up serving the generic code.
# Needs: a release build with tests (swift build -c release --build-tests) and qemu-user.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/release
tests=$bin/TesseraPackageTests.xctest
[ -x "$tests" ] || { echo "check-isa: $tests missing; run: swift test -c release (or swift build -c release --build-tests)" >&2; exit 1; }
[ -x "$bin/tessera" ] || swift build -c release --product tessera
command -v qemu-x86_64 >/dev/null || { echo "check-isa: qemu-x86_64 missing (apt-get install qemu-user)" >&2; exit 1; }

kernel_tests=TesseraKernelsTests.KernelConformanceTests,TesseraKernelsTests.TensorAPITests
status=0
for module in Generic AVX2 AVX512; do
    # Global or weak *code* symbols (T, W) that are not this module's own.
    leaked=$(nm --defined-only "$bin/TesseraKernels$module.build/"*.o | awk '$2 == "T" || $2 == "W" {print $3}' \
        | grep -v "TesseraKernels$module" || true)
    if [ -n "$leaked" ]; then
        echo "check-isa: TesseraKernels$module defines shared symbols that the linker may merge across ISA builds:" >&2
        echo "$leaked" | swift demangle >&2
        status=1
    fi
done
[ $status -eq 0 ] && echo "check-isa: ISA kernel modules define no shared-linkage symbols"

for cpu in Nehalem Haswell; do
    echo "check-isa: kernel tests under qemu-x86_64 -cpu $cpu"
    qemu-x86_64 -cpu "$cpu" "$bin/tessera" info 2>/dev/null | grep -E "features|active"
    if output=$(qemu-x86_64 -cpu "$cpu" "$tests" "$kernel_tests" 2>&1); then
        echo "$output" | grep -E "Executed .* tests" | tail -1
    else
        echo "$output" | grep -E "error|Executed|Signal" >&2
        echo "check-isa: FAILED under -cpu $cpu" >&2
        status=1
    fi
done
exit $status
