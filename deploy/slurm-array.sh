#!/bin/bash
# presize over a shared file system as a Slurm job array: one task per shard, each writing its
# own manifest. Submit with `sbatch deploy/slurm-array.sh`, then merge:
#   presize manifest merge manifests/m-*.json -o site/img.json
# --shard auto reads SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT.
#SBATCH --job-name=presize
#SBATCH --array=0-7
#SBATCH --cpus-per-task=4
#SBATCH --mem=4G
#SBATCH --time=01:00:00
#SBATCH --output=logs/presize-%A-%a.out
set -euo pipefail
mkdir -p manifests
srun presize src \
  --out-dir site/img \
  --width 320,640,1280 \
  --format avif,webp,jpeg \
  --jobs "${SLURM_CPUS_PER_TASK}" \
  --shard auto \
  --manifest "manifests/m-${SLURM_ARRAY_TASK_ID}.json" \
  --progress never
