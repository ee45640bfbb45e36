#!/usr/bin/env bash
# Chung et al. (2014)'s protocol on one polyphonic-music set, as results/polyphonic/README.md reports it:
# for each cell, a random search of RMSProp learning rates (seed 0, hparams_search=polyphonic_lr: 10 trials
# unless TRIALS says otherwise), then 5 fresh seeds (1-5) at the rate with the best validation NLL
# (experiment=chung_polyphonic). Extra overrides for both (a smaller step budget, say) go in EXTRA.
#   bash results/polyphonic/study.sh jsb_chorales ../shared/data/polyphonic/JSB_Chorales.mat [cells...]
#   TRIALS=5 EXTRA="trainer.max_steps=3000" bash results/polyphonic/study.sh nottingham \
#       ../shared/data/polyphonic/Nottingham.mat rnn gru lstm_peephole
# Run from the repository root of a clean checkout; 2 joblib workers of 1 thread each.
set -euo pipefail
data=$1 path=$(realpath "$2"); shift 2
cells=${*:-rnn gru lstm lstm_peephole}
trials=${TRIALS:-10}
read -r -a extra <<< "${EXTRA:-}"
runs=results/polyphonic/runs/$data
for cell in $cells; do
    rnnbench train -m experiment=chung_polyphonic hparams_search=polyphonic_lr data="$data" data.path="$path" \
        model.cell="$cell" hydra.sweeper.n_trials="$trials" "${extra[@]}" hydra/launcher=joblib logger=csv \
        hydra.sweep.dir="$runs/search/$cell"
    lr=$(python3 -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['best_params']['optim.lr'])" \
        "$runs/search/$cell/optimization_results.yaml")
    rnnbench train -m experiment=chung_polyphonic data="$data" data.path="$path" model.cell="$cell" \
        optim.lr="$lr" "${extra[@]}" hydra/launcher=joblib logger=csv hydra.sweep.dir="$runs/seeds-1-5/$cell"
done
