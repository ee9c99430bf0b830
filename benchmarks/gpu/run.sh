#!/usr/bin/env bash
# The GPU run of issue 20, in ONE call on a fresh GPU machine with a copy of the repository:
#
#     bash benchmarks/gpu/run.sh            # from the repository root; results in $OUT and benchmarks/results/
#
# (with the device tool: one `run` of `bash benchmarks/gpu/run.sh`, timeout_s=600; the parts stop by BUDGET_S=540).
#
# 1. environment: a venv (/tmp/mdlprob-gpu-venv) that also sees the machine's own Python packages (a .pth
#    file, appended after the venv's own), the CUDA torch build ($TORCH_SPEC from the PyTorch index, cu126
#    then cu128) when no CUDA torch is importable yet or TORCH_INSTALL=always (if the install fails, the
#    machine's own CUDA torch is used and the log says so), `pip install -e .[bench]` and scvi-tools;
# 2. benchmarks, each under `timeout` so the whole run ends within $BUDGET_S seconds (default 540) and a
#    part that runs out leaves the others' results:
#    a. benchmarks/throughput.py on cuda, 100k observations, batch 256 and 1024, every model but the graph, the reference
#       with and without torch.compile (--compile times both);
#    b. benchmarks/peers_throughput.py: scvi-tools TOTALVI against mdlprob on the same data and batch sizes;
#    c. benchmarks/inference_memory.py --device cuda: latent and 100-sample imputation of 100k observations
#       streamed, wall time and peak GPU memory;
# 3. benchmarks/gpu/collect.py merges the parts into throughput_gpu.{json,md} in $OUT and benchmarks/results/,
#    next to run.log (this script's output) and environment.txt.
#
# Knobs (environment): BUDGET_S, TORCH_SPEC (default torch==2.13.0), TORCH_INDEXES (space-separated
# index URLs), TORCH_INSTALL (if-missing | always | never), SKIP_INSTALL=1 (no pip at all),
# N_OBS (default 100000), EPOCHS, REPEATS, SIZE_ARGS (extra size flags), SYS_PY (the Python to start from),
# DEVICE (default cuda; `DEVICE=cpu` rehearses the whole run on a CPU machine, without peak GPU memory):
#
#     DEVICE=cpu SKIP_INSTALL=1 SYS_PY=.venv/bin/python N_OBS=300 \
#         SIZE_ARGS="--n-genes 64 --n-proteins 8 --n-hidden 32 --n-latent 4" bash benchmarks/gpu/run.sh
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-/tmp/mdlprob-gpu-out}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/mdlprob-gpu.XXXXXX)
LOG=$OUT/run.log
exec > >(tee -a "$LOG") 2>&1

BUDGET_S=${BUDGET_S:-540}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
TORCH_INDEXES=${TORCH_INDEXES:-https://download.pytorch.org/whl/cu126 https://download.pytorch.org/whl/cu128}
N_OBS=${N_OBS:-100000}
EPOCHS=${EPOCHS:-1}
REPEATS=${REPEATS:-2}
VENV=/tmp/mdlprob-gpu-venv
SYS_PY=${SYS_PY:-$(command -v python3)}
DEVICE=${DEVICE:-cuda}
SIZE_ARGS=${SIZE_ARGS:-}

left() { echo $(( BUDGET_S - SECONDS )); }
# step NAME CAP_S COMMAND...: run COMMAND under timeout min(CAP_S, time left - 15 s); log its status and time.
step() {
    local name=$1 cap=$2; shift 2
    local limit; limit=$(( $(left) - 15 )); (( cap < limit )) && limit=$cap
    if (( limit < 10 )); then echo "== $name: skipped, no time left"; return 1; fi
    echo "== $name (limit ${limit}s, ${SECONDS}s into the run): $*"
    local t0=$SECONDS
    timeout --signal=TERM --kill-after=5 "$limit" "$@"
    local rc=$?
    echo "== $name: exit $rc after $(( SECONDS - t0 ))s$([[ $rc == 124 ]] && echo ' (TIMED OUT)')"
    return $rc
}

echo "GPU run of mdlprob, $(date -u +%FT%TZ), budget ${BUDGET_S}s, work dir $WORK"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

# ---------------------------------------------------------------- 1. environment
PY=$VENV/bin/python
PIP=("$PY" -m pip install --disable-pip-version-check --progress-bar off)
if ! "$SYS_PY" -m venv "$VENV"; then  # no ensurepip on the machine: a venv without pip, filled by the outer pip
    if "$SYS_PY" -m venv --without-pip "$VENV"; then
        PIP=("$SYS_PY" -m pip --python "$PY" install --disable-pip-version-check --progress-bar off)
    else
        echo "WARNING: no venv could be made; installing into $SYS_PY itself"; PY=$SYS_PY
        PIP=("$PY" -m pip install --disable-pip-version-check --progress-bar off)
    fi
fi
# The machine's own packages (its CUDA torch among them) stay importable, after the venv's own.
"$SYS_PY" -c 'import site, sys; print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' \
    > "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/zz_machine_site.pth"
cuda_ok() { [[ $DEVICE == cpu ]] || "$PY" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; }
# The CUDA build is installed when no CUDA torch is importable yet, or always with TORCH_INSTALL=always
# (the machine's own CUDA torch, when there is one, saves a few GB of download and minutes of the budget).
TORCH_INSTALL=${TORCH_INSTALL:-if-missing}
if [[ ${SKIP_TORCH_INSTALL:-0} == 1 || ${SKIP_INSTALL:-0} == 1 ]]; then TORCH_INSTALL=never; fi
if [[ $TORCH_INSTALL == always ]] || { [[ $TORCH_INSTALL == if-missing ]] && ! cuda_ok; }; then
    for index in $TORCH_INDEXES; do
        step "install $TORCH_SPEC from $index" 200 "${PIP[@]}" "$TORCH_SPEC" --index-url "$index" && break
    done
fi
if ! cuda_ok && [[ $PY != "$SYS_PY" && -d $("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/torch ]]; then
    echo "WARNING: the installed torch sees no GPU; removing it to fall back to the machine's own"
    rm -rf "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"/torch*
fi
if ! cuda_ok; then
    echo "FATAL: no CUDA torch in the venv (neither installed nor the machine's own)"; exit 1
fi
if [[ ${SKIP_INSTALL:-0} != 1 ]]; then
    if ! step "install mdlprob[bench] and scvi-tools" 150 "${PIP[@]}" -e ".[bench]" "scvi-tools>=1.1"; then
        # pip installs nothing when one requirement fails: mdlprob alone first (the benchmarks need it), then the peer.
        step "install mdlprob alone" 90 "${PIP[@]}" -e . || echo "WARNING: mdlprob's requirements did not install"
        step "install scvi-tools alone" 60 "${PIP[@]}" "scvi-tools>=1.1" || echo "WARNING: no scvi-tools: that part skips"
    fi
fi
{
    echo "python: $("$PY" -c 'import sys; print(sys.version.split()[0])')"
    "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
               torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")'
    "$PY" -c 'import pyro; print("pyro", pyro.__version__)' 2>&1
    "$PY" -c 'import scvi; print("scvi-tools", scvi.__version__)' 2>&1 | tail -1
    echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout')"
    echo "cpus: $(nproc), budget ${BUDGET_S}s, n_obs $N_OBS, epochs $EPOCHS, repeats $REPEATS"
} > "$WORK/environment.txt" 2>&1
cat "$WORK/environment.txt"
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH} MPLBACKEND=Agg

# ---------------------------------------------------------------- 2. benchmarks (most important first)
# shellcheck disable=SC2206  # SIZE_ARGS is split into flags on purpose
COMMON=(--device "$DEVICE" --n-obs "$N_OBS" --epochs "$EPOCHS" --repeats "$REPEATS" $SIZE_ARGS)
# One throughput run for both batch sizes (the 100k-observation data are built once); it writes its
# results after every cell, so a time-out keeps the cells measured. GraphPoEVAE is left out: its
# default is full-batch and its 15-NN graph of 100k observations is built on the CPU before any cell.
step "throughput, batch 256 and 1024" 290 "$PY" benchmarks/throughput.py "${COMMON[@]}" --batch-sizes 256,1024 \
    --models PoEVAE,MoEVAE,MoPoEVAE,FactorModel --compile --note "GPU run (benchmarks/gpu/run.sh)" --out "$WORK/throughput"
step "TOTALVI and mdlprob" 130 "$PY" benchmarks/peers_throughput.py "${COMMON[@]}" --batch-sizes 256,1024 \
    --models PoEVAE --out "$WORK/peers"

step "inference, 100k observations" 60 "$PY" benchmarks/inference_memory.py --device "$DEVICE" --n-obs "$N_OBS" \
    --n-samples 100 --out "$WORK/inference"

step "GPU smoke tests (pytest -m gpu)" 60 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py \
    > "$WORK/gpu_tests.txt" 2>&1 || true
cp "$WORK/gpu_tests.txt" "$OUT/" 2>/dev/null || true

# ---------------------------------------------------------------- 3. results
# A CPU rehearsal (DEVICE=cpu) writes only to $OUT, never over the GPU results in benchmarks/results/.
DESTS=("$OUT"); [[ $DEVICE == cuda ]] && DESTS+=("$ROOT/benchmarks/results")
"$PY" benchmarks/gpu/collect.py "$WORK" "${DESTS[@]}"
echo "done in ${SECONDS}s"
