#!/usr/bin/env bash
# The Python packages rnnbench needs that the lent GPU machines' image lacks, carried there as wheels.
#
# That machine reaches no package registry. Its python3 (3.12) already holds a CUDA torch, pytorch-lightning,
# torchmetrics, numpy, scipy, scikit-learn, matplotlib, pandas, filelock, psutil, joblib, pyyaml, requests, click,
# protobuf, xxhash, typing-extensions, pytest, pytest-xdist, pytest-timeout, ... (the device tool's KINDS.md lists
# them). Everything else rnnbench imports (its pyproject dependencies and their requirements, closed over and less
# what the image has) is pinned below at the versions rnnbench's tests pass with here.
#
#   bash benchmarks/gpu_wheels.sh download   # here (a registry in reach): the wheels into .whl/ (28.5 MiB)
#   bash benchmarks/gpu_wheels.sh install    # there: into /tmp/site, no index; then PYTHONPATH=/tmp/site
#   bash benchmarks/gpu_wheels.sh list       # the pinned requirements, one a line
#   bash benchmarks/gpu_wheels.sh image      # the packages the image already has, one a line
#
# .whl/ must stay out of git (.gitignore: /.whl/); the device tool carries it (run's carry: [".whl"]), 64 MiB a
# call with the working tree, so `download` refuses a total above 60 MiB. Variables: WHEELS (the folder, .whl),
# SITE (install target, /tmp/site), PYTHON (the pip that downloads: python3; installs: python3), WHEEL_PYTHON (the
# target interpreter's version, 3.12: 3.11 fetches this machine's, to try the list against a bare interpreter).
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=${WHEELS:-.whl}
SITE=${SITE:-/tmp/site}
PYTHON=${PYTHON:-python3}
WHEEL_PYTHON=${WHEEL_PYTHON:-3.12}
LIMIT_MIB=60

# Binary wheels on the index (pure-Python or manylinux x86-64 for CPython $WHEEL_PYTHON).
BINARY=(
  # Hydra and its plugins (hydra_setup registers the Optuna sweeper too, which imports optuna)
  hydra-core==1.3.8 omegaconf==2.3.1 hydra-joblib-launcher==1.2.0 hydra-submitit-launcher==1.2.0 submitit==1.5.4
  hydra-optuna-sweeper==1.3.0 optuna==2.10.1 alembic==1.13.3 SQLAlchemy==1.4.54 greenlet==3.5.6 Mako==1.4.3
  cliff==4.17.0 autopage==0.6.0 cmd2==4.3.1 prompt_toolkit==3.0.53 pyperclip==1.11.0 rich-argparse==1.8.0
  stevedore==5.10.0 prettytable==3.19.0 wcwidth==0.9.4 cmaes==0.13.1 colorlog==6.12.0
  # W&B and what it needs beyond the image
  wandb==0.31.0 cwevals==0.0.1b1 platformdirs==4.14.9 distro==1.9.0 sniffio==1.3.1
  opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2 opentelemetry-semantic-conventions==0.66b2
  opentelemetry-proto==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2
  opentelemetry-exporter-otlp-proto-common==1.45.2 opentelemetry-exporter-http-transport==0.66b2
  opentelemetry-exporter-otlp-common==0.66b2 googleapis-common-protos==1.76.0
  # pydantic (rnnbench's argument types; wandb's too)
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
  # in the image too, but at a version not known here, and these need recent ones (pydantic: typing-extensions
  # >= 4.16; googleapis-common-protos: protobuf >= 6.33.5): carried at the versions tested here, newer than the
  # image's or the same, so torch and the rest import them as before
  typing-extensions==4.16.0 protobuf==7.36.2
  # data=mnist1d regenerates its data set with the mnist1d package (pure Python, 14 kB)
  mnist1d==0.0.2.post1
)
# Published as source only: built here into a pure-Python wheel.
SOURCE=(antlr4-python3-runtime==4.9.3)
# What the image's python3 holds (KINDS.md, "Python packages already there", as read 2026-11-17): not carried.
# tests/test_gpu_check.py checks that rnnbench's requirements, closed over, are each here or carried above.
IMAGE=(
  absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
  charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
  cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax
  fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize
  hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2
  joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown
  markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch
  mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti
  nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver
  nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13
  nvidia-nvtx onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix
  orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache
  protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest
  pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex
  requests rich sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece
  sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
  tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio
  torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope triton typer typing-extensions
  typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
)

platforms() {
  local n
  for n in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
           manylinux2014_x86_64 manylinux1_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64 manylinux_2_35_x86_64; do
    printf -- '--platform %s ' "$n"
  done
}

total_mib() {
  du -sk "$WHEELS" | awk '{printf "%.1f", $1 / 1024}'
}

case "${1:-download}" in
  download)
    mkdir -p "$WHEELS"
    # shellcheck disable=SC2046
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$WHEEL_PYTHON" --implementation cp \
      $(platforms) -d "$WHEELS" "${BINARY[@]}"
    "$PYTHON" -m pip wheel -q --no-deps --no-binary=:all: -w "$WHEELS" "${SOURCE[@]}"
    count=$(find "$WHEELS" -maxdepth 1 -name '*.whl' | wc -l)
    expected=$(( ${#BINARY[@]} + ${#SOURCE[@]} ))
    if [ "$count" -ne "$expected" ]; then
      echo "gpu_wheels: $count wheels in $WHEELS, expected $expected (one of each; remove stale versions)" >&2
      exit 1
    fi
    size=$(total_mib)
    echo "gpu_wheels: $count wheels, $size MiB in $WHEELS"
    if awk -v s="$size" -v l="$LIMIT_MIB" 'BEGIN {exit !(s > l)}'; then
      echo "gpu_wheels: $size MiB is above $LIMIT_MIB MiB: the device tool carries 64 MiB a call in all" >&2
      exit 1
    fi
    ;;
  install)
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
      "$WHEELS"/*.whl
    echo "gpu_wheels: installed $(find "$WHEELS" -maxdepth 1 -name '*.whl' | wc -l) wheels into $SITE: run with PYTHONPATH=$SITE"
    # what the carried packages need and this interpreter lacks, said now rather than at the first import
    PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" benchmarks/gpu_check.py --check-requirements
    ;;
  list)
    printf '%s\n' "${BINARY[@]}" "${SOURCE[@]}"
    ;;
  image)
    printf '%s\n' "${IMAGE[@]}"
    ;;
  *)
    echo "usage: bash benchmarks/gpu_wheels.sh download|install|list|image" >&2
    exit 2
    ;;
esac
