# Shared by the serving benchmarks (source it): servers started in the background are recorded in
# `pids` and stopped on exit; `wait_healthy URL` waits up to two minutes for URL/health.
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_healthy() {
    for _ in $(seq 1 600); do
        if curl -sf "$1/health" >/dev/null; then return 0; fi
        sleep 0.2
    done
    echo "no health from $1" >&2; exit 1
}
