#!/usr/bin/env bash
# make demo: synthesize -> prepare -> DP-FedAvg on a small default.
# Usage: experiments/demo.sh OUTPUT_ROOT   (its demo* folders are replaced)
set -euo pipefail
root="${1:-runs}"
py=.venv/bin/python
export TF_CPP_MIN_LOG_LEVEL=2
rm -rf "$root/demo_bids" "$root/demo_prepared" "$root/demo"
mkdir -p "$root"

echo "== 1/4 synthesize: 8 sites x 8 subjects (ATLAS R2.0 layout, 3 mm)"
$py -m data_pipelines.synthesize --output_dir="$root/demo_bids" \
    --num_sites=8 --subjects_per_site=8 --voxel_size_mm=3 --seed=0

echo "== 2/4 prepare: one client per subject, 64x64 axial slices, 2 subjects per site and site R008 held out"
$py -m data_pipelines.prepare --bids_dir="$root/demo_bids" \
    --output_dir="$root/demo_prepared" --client_unit=subject --image_size=64 --spacing_mm=3 \
    --holdout_fraction=0.25 --test_sites=R008 --background_ratio=0.5 --seed=0

echo "== 3/4 train: DP-FedAvg, adaptive clipping, Poisson sampling (16 of 42 clients per round expected)"
$py -m experiments.run_dp_fedavg --data_dir="$root/demo_prepared" \
    --root_output_dir="$root" --experiment_name=demo --total_rounds=30 \
    --clients_per_round=16 --noise_multiplier=0.3 --delta=1e-5 \
    --client_optimizer=adam --client_learning_rate=0.003 --batch_size=4 \
    --server_optimizer=sgd --server_learning_rate=1.0 \
    --l2_norm_clip=1.0 --base_filters=4 --seed=0

echo "== verify the privacy report"
$py -m experiments.privacy_report --run_dir="$root/demo" --verify

echo "== 4/4 predict: segment a held-out subject's raw T1w with the exported SavedModel"
subject=$($py -c "import json,sys; print(json.load(open(sys.argv[1]))['holdout']['subjects'][0])" \
    "$root/demo_prepared/manifest.json")
t1w=$(find "$root/demo_bids" -name "${subject}_*_T1w.nii.gz" | head -n 1)
$py -m experiments.predict --saved_model="$root/demo/saved_model" --input="$t1w" \
    --output="$root/demo/predictions/${subject}_mask.nii.gz" \
    --probabilities="$root/demo/predictions/${subject}_prob.nii.gz"
