#!/usr/bin/env bash
# Issue 16's GPU figures in one lent-GPU call: the speed benchmarks against diffusers and
# pytorch-fid (bench/gpu.py), then ddpm and ebm trained with only `dataset` set on MNIST
# at 28 px (bench/quality.py --defaults), side by side on the one GPU.
#
# A lent GPU host has no network and no checkout of ../shared, so this runs in two places:
#
#   bash bench/gpu_session.sh prep    # here: wheels into .whl/, MNIST t10k into .gpu-data/
#   # then the device tool's run, with carry [".whl", ".gpu-data"] and timeout_s 590:
#   bash bench/gpu_session.sh run     # there: every figure under $OUT (or bench/out/gpu/)
#
# The device time a session is lent (15 minutes, a start included) fits one such call; each
# phase has a time limit (seconds, from the environment) so whatever finished comes back:
#   SPEED_S (default 270)    bench/gpu.py --quick
#   QUALITY_S (default 290)  both quality runs, together
# A phase that overruns is killed and the log says so; the other still runs. For a dry run
# on a CPU, SPEED_MODE=--smoke and QUALITY_BUDGET="--seconds 5 --per-class 4" shrink both.
set -uo pipefail
cd "$(dirname "$0")/.."

WHEELS=(diffusers==0.42.1 pytorch-fid==0.3.0 pydantic==2.14.4 pydantic-core==2.50.5
        annotated-types==0.8.0 typing-inspection==0.4.5)
MNIST=../shared/data/mnist-t10k

prep() {
    set -e
    # The lent host's python3 is 3.12 (the device tool's KINDS.md).
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}"
    mkdir -p .gpu-data/mnist-t10k
    cp "$MNIST"/* .gpu-data/mnist-t10k/
    (cd .gpu-data/mnist-t10k && md5sum -c --quiet MD5SUMS)
    du -sh .whl .gpu-data
}

run() {
    # At most 8 files come back from the device tool: speed.log, gpu.json, and per engine
    # its log, JSON and sample grid.
    local out=${OUT:-bench/out/gpu}
    mkdir -p "$out"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
    {
        command -v nvidia-smi >/dev/null \
            && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
        echo "== speed: bench/gpu.py ${SPEED_MODE:---quick} (limit ${SPEED_S:-270} s)"
        timeout "${SPEED_S:-270}" python3 bench/gpu.py "${SPEED_MODE:---quick}" \
            --out "$out/gpu.json" 2>&1
        echo "exit $?"
    } > "$out/speed.log"
    tail -n 30 "$out/speed.log"

    echo "== quality: ddpm and ebm, MNIST 28 px, defaults (limit ${QUALITY_S:-290} s)"
    for engine in ddpm ebm; do
        rm -rf "/tmp/quality-$engine"
        # shellcheck disable=SC2086 # QUALITY_BUDGET is several arguments
        { timeout "${QUALITY_S:-290}" python3 bench/quality.py --engines "$engine" \
            --dataset mnist_t10k --root .gpu-data/mnist-t10k --image-size 28 \
            ${QUALITY_BUDGET:---defaults} --threads 4 --out "/tmp/quality-$engine"; echo "exit $?"; } \
            > "$out/quality-$engine.log" 2>&1 &
    done
    wait
    for engine in ddpm ebm; do
        echo "-- $engine"
        tail -n 4 "$out/quality-$engine.log"
        cp "/tmp/quality-$engine/quality-mnist_t10k.json" "$out/quality-$engine.json"
        cp "/tmp/quality-$engine/quality-mnist_t10k-$engine.png" "$out/quality-$engine.png"
    done
}

case "${1:-}" in
    prep) prep ;;
    run) run ;;
    *) echo "usage: bash bench/gpu_session.sh prep|run" >&2; exit 2 ;;
esac
