#!/bin/bash
# presize over a shared file system as a Slurm job array: one task per shard, each writing its
# own manifest. From the folder holding src/, submit with
#   mkdir -p logs && sbatch deploy/slurm-array.sh
# (Slurm does not create logs/), then merge:
#   presize manifest merge manifests/m-*.json -o site/img.json
# --shard auto reads SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT. To
# rerun a task that died, requeue it in its array (scontrol requeue JOBID_K), or submit the
# whole array again; `sbatch --array=K` alone is refused (README, "Many machines").
# deploy/test-slurm.sh runs this file on a real cluster.
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
