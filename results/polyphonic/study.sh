#!/usr/bin/env bash
# Chung et al. (2014)'s protocol on one polyphonic-music set, as results/polyphonic/README.md reports it:
# for each cell, a random search of 10 RMSProp learning rates (seed 0, hparams_search=polyphonic_lr), then
# 5 fresh seeds (1-5) at the rate with the best validation NLL (experiment=chung_polyphonic).
#   bash results/polyphonic/study.sh jsb_chorales ../shared/data/polyphonic/JSB_Chorales.mat [cells...]
# Run from the repository root of a clean checkout; 2 joblib workers of 1 thread each.
set -euo pipefail
data=$1 path=$(realpath "$2"); shift 2
cells=${*:-rnn gru lstm lstm_peephole}
runs=results/polyphonic/runs/$data
for cell in $cells; do
    rnnbench train -m experiment=chung_polyphonic hparams_search=polyphonic_lr data="$data" data.path="$path" \
        model.cell="$cell" hydra/launcher=joblib logger=csv hydra.sweep.dir="$runs/search/$cell"
    lr=$(python3 -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['best_params']['optim.lr'])" \
        "$runs/search/$cell/optimization_results.yaml")
    rnnbench train -m experiment=chung_polyphonic data="$data" data.path="$path" model.cell="$cell" \
        optim.lr="$lr" hydra/launcher=joblib logger=csv hydra.sweep.dir="$runs/seeds-1-5/$cell"
done
