#!/usr/bin/env bash
# Every check that needs a CUDA device, in one short script (a lent GPU machine is time-limited):
# the gpu-marked tests, the CRF benchmark, the engine throughput benchmark and the PixelCNN++ sampling
# benchmark (naive vs crop vs cached, issue 8's >= 20x goal).
#   bash benchmarks/gpu_checks.sh OUTDIR [TAG]
# OUTDIR receives pytest_gpu.log, crf_<TAG>.json, engine_<TAG>.json, pixelcnn_sampling_<TAG>.json. The machine's python3 must
# have torch with CUDA; thesislib is used from the checkout (PYTHONPATH), and pydensecrf2 from
# the environment (or from wheels installed onto PYTHONPATH beforehand).
set -u
out=${1:?usage: gpu_checks.sh OUTDIR [TAG]}
tag=${2:-gpu}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 THESISLIB_PROGRESS=none
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
gpu_tests=$(grep -rl "mark.gpu" tests --include='test_*.py' | sort)
timeout 240 python3 -m pytest -q -p no:cacheprovider -m gpu -o addopts= $gpu_tests 2>&1 | tee "$out/pytest_gpu.log"
timeout 240 python3 benchmarks/crf_benchmark.py --skip-exact-cpu --repeats 5 --json "$out/crf_$tag.json" 2>&1 | tail -40
timeout 300 python3 benchmarks/engine_benchmark.py --json "$out/engine_$tag.json" 2>&1 | tail -20
timeout 300 python3 benchmarks/pixelcnn_sampling.py --device cuda --threads 1 --json "$out/pixelcnn_sampling_$tag.json" 2>&1 | tail -12
