#!/usr/bin/env bash
# One prepared GPU session: train TASK for MINUTES on the device, bring back the EMA weights small.
#
#   bash scripts/gpu_session.sh TASK MINUTES PACK [trainer arguments...]
#
# On the device machine ($OUT is the folder whose files come back), e.g. for the explorer GAN:
#   python -m imgen data pack gan -o packs/gan                  # here, once (48 MB)
#   mv weights /tmp/weights-aside                                # the tree + carry must stay under 64 MiB
#   run(command="bash scripts/gpu_session.sh gan 8 packs/gan --set kaokore --batch 64",
#       carry=["packs/gan"], timeout_s=600)
#   mv /tmp/weights-aside weights
#   python -m imgen export gan --run <files_at>/run --name kaokore-gan   # here: card, sheets, registry
#
# MINUTES is the training budget (the LR schedule spans it); keep it about 1.5 minutes under the call's
# timeout for start-up, the final checkpoint and the copy. What comes back in $OUT/run: ckpt.pt stripped of
# optimizer and raw-model state (fp16 EMA weights when that is needed to stay under 16 MiB), args.json,
# metrics.jsonl, the last sample sheet, and train.log. DEVICE=cpu runs the same on a CPU (for a dry run).
set -euo pipefail
TASK=$1; MINUTES=$2; PACK=$3; shift 3
OUT=${OUT:-out}
DEVICE=${DEVICE:-cuda}
RUN=$(mktemp -d)/run
mkdir -p "$OUT/run"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
if ! python -m imgen train "$TASK" --device "$DEVICE" --data "$PACK" --out "$RUN" --minutes "$MINUTES" "$@" \
        > "$OUT/run/train.log" 2>&1; then
    tail -n 30 "$OUT/run/train.log"
    exit 1
fi
python - "$RUN" "$OUT/run" <<'PY'
import shutil, sys
from pathlib import Path
from imgen.training.loop import strip_checkpoint
run, out = Path(sys.argv[1]), Path(sys.argv[2])
size = strip_checkpoint(run / "ckpt.pt", out / "ckpt.pt")
if size > 15 * 2**20:
    size = strip_checkpoint(run / "ckpt.pt", out / "ckpt.pt", half=True)
for name in ("args.json", "metrics.jsonl"):
    shutil.copy(run / name, out / name)
sheets = sorted((run / "samples").glob("*.png")) if (run / "samples").exists() else []
if sheets:
    shutil.copy(sheets[-1], out / sheets[-1].name)
print(f"{out / 'ckpt.pt'}: {size / 2**20:.1f} MiB")
PY
tail -n 3 "$OUT/run/metrics.jsonl"
