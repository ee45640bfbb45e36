"""Bad input, up front: every bad setting of ``rnnbench train [-m] KEY=VALUE ...`` is refused before any job
starts, with exit status 2, one line on stderr naming the setting (``rnnbench: error: KEY=VALUE is not allowed:
...``), no traceback, and nothing written; good input still passes.

The cases are generated per setting (a wrong type, a negative, zero where it is not allowed, nan, inf, a huge
value), per config-group choice (misspelled), and for unknown keys, bad interpolations and Hydra's launcher
and sweeper settings. A pyramid: every case runs the launch path's validation
(:func:`rnnbench.launch.validate.check_every_job`) with each distinct composition composed once for the whole
module, so a case costs its checks, not its compositions; a dozen representative ones run the whole in-process
launch (``rnnbench.cli.main``, each composing afresh) and must print exactly that message; four run
``python -m rnnbench`` for real.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig

import rnnbench.hydra_setup  # noqa: F401  (the resolvers Hydra's settings use)
import rnnbench.launch.validate as validation
from conftest import PATIENCE, SHARED_TEXT, cli_env
from rnnbench.cli import main
from rnnbench.config import config_dir, validate, validate_hydra
from rnnbench.errors import ConfigError, RnnbenchError
from rnnbench.launch.validate import preflight
from rnnbench.record.secrets import Secrets

HUGE = 10**12
NOT_INT, NEGATIVE, ZERO, NAN, INF, FRACTION = "abc", -1, 0, "nan", "inf", 1.5


def each(setting: str, *values: object, prefix: tuple[str, ...] = (), key: str | None = None,
         add: bool = False) -> list[tuple[tuple[str, ...], str]]:
    """One case per bad value of ``setting``: (the command's arguments, the setting the refusal must name)."""
    sign = "+" if add else ""
    return [((*prefix, f"{sign}{setting}={value}"), key or setting) for value in values]


TIMEMACHINE = ("data=timemachine",)
SGD = ("optim=sgd",)
JOBLIB = ("-m", "hydra/launcher=joblib")
SUBMITIT = ("-m", "hydra/launcher=submitit_local")
SLURM = ("-m", "hydra/launcher=slurm")
OPTUNA = ("-m", "hparams_search=adding_lr_hidden")

CASES: list[tuple[tuple[str, ...], str]] = [
    # top-level settings
    *each("seed", NOT_INT, NEGATIVE, NAN, INF, FRACTION, HUGE, "true"),
    *each("threads", ZERO, NEGATIVE, NOT_INT, NAN, 10**6),
    *each("verbose", "maybe", 1), *each("resume", "maybe", 0), *each("checkpoint", "maybe", 2),
    *each("objective", "nope", "val/accuracy", 123), *each("objective_direction", "up", "max"),
    *each("objective", "val/mse", prefix=("data=digits",)),
    # settings that would be ignored, train nothing, or fail late
    *each("trainer.limit_train_batches", 0, add=True), *each("trainer.devices", 10**12),
    *each("trainer._target_", "builtins.dict"), *each("diagnostics.foo", 1, add=True), *each("logger.foo", 1, add=True),
    *each("foo", 1, add=True), *each("sed", 1, add=True),
    # data: the adding problem (the default), copy, digits, timemachine
    *each("data.seq_len", NOT_INT, NEGATIVE, ZERO, 1, NAN, INF, FRACTION, HUGE),
    *each("data.num_train", NOT_INT, NEGATIVE, ZERO, NAN, INF, HUGE),
    *each("data.num_val", NOT_INT, ZERO, NAN, HUGE), *each("data.num_test", NEGATIVE, INF, HUGE),
    *each("data.batch_size", NOT_INT, NEGATIVE, ZERO, NAN, INF, FRACTION),
    *each("data.seed", NEGATIVE, NOT_INT),
    *each("data.seq_len", NOT_INT, ZERO, NAN, HUGE, prefix=("data=copy",)),
    *each("data.num_train", NEGATIVE, HUGE, prefix=("data=copy",)),
    *each("data.val_fraction", NOT_INT, NEGATIVE, ZERO, NAN, INF, 0.7, prefix=("data=digits",)),
    *each("data.test_fraction", 0.5, NAN, prefix=("data=digits",)),
    *each("data.layout", "cols", 8, prefix=("data=digits",)),
    *each("data.seq_len", 100_000, NOT_INT, ZERO, NAN, prefix=TIMEMACHINE),
    *each("data.num_train", 1_000_000, NEGATIVE, prefix=TIMEMACHINE),
    *each("data.path", 123, "/no/such/file.txt", prefix=TIMEMACHINE),
    *each("data.sha256", "abc", 123, prefix=TIMEMACHINE), *each("data.url", 123, prefix=TIMEMACHINE),
    # model
    *each("model.hidden_size", NOT_INT, NEGATIVE, ZERO, NAN, INF, FRACTION, "1e12", HUGE, 10**6),
    *each("model.num_layers", NOT_INT, NEGATIVE, ZERO, NAN, INF, "1e12", HUGE, 10**8),
    *each("model.dropout", NOT_INT, NEGATIVE, 1, NAN, INF),
    *each("model.embedding_size", NOT_INT, NEGATIVE, ZERO, NAN, INF, HUGE),
    *each("model.forget_bias", NOT_INT, NAN, INF, "-inf"),
    *each("model.param_budget", NOT_INT, NEGATIVE, ZERO, NAN, INF, HUGE),
    *each("model.cell", "transfomer", 3), *each("model.recurrent_init", "orth"),
    *each("model.nonlinearity", "gelu", prefix=("model.cell=rnn",)),
    *each("model.bidirectional", "maybe"), *each("model.compile", "maybe"),
    *each("model.bidirectional", "true", prefix=(*TIMEMACHINE, f"data.path={SHARED_TEXT}")),
    # optim: Adam (the default) and SGD
    *each("optim.lr", NOT_INT, NEGATIVE, ZERO, NAN, INF),
    *each("optim.weight_decay", NOT_INT, NEGATIVE, NAN, INF),
    *each("optim.momentum", NOT_INT, NEGATIVE, NAN, INF, prefix=SGD),
    *each("optim.weight_decay", NEGATIVE, prefix=SGD), *each("optim.lr", NEGATIVE, prefix=SGD),
    *each("optim.dampening", NAN, NOT_INT, prefix=SGD, add=True),
    *each("optim.nesterov", "true", prefix=SGD, add=True),
    *each("optim.eps", NEGATIVE, NOT_INT, add=True), *each("optim.amsgrad", "maybe", add=True),
    *each("optim.betas", "[0.9]", "[0.9,2]", "[0.9,abc]", add=True),
    # trainer
    *each("trainer.max_steps", NOT_INT, -2, ZERO, NAN, INF, FRACTION, -1),
    *each("trainer.max_epochs", NOT_INT, ZERO, -2, NAN, FRACTION),
    *each("trainer.val_check_interval", ZERO, NEGATIVE, NAN, INF, FRACTION, 0.5, "abc"),
    *each("trainer.val_check_interval", HUGE, prefix=("trainer.check_val_every_n_epoch=1",)),
    *each("trainer.log_every_n_steps", NOT_INT, ZERO, NEGATIVE, NAN, FRACTION),
    *each("trainer.gradient_clip_val", NOT_INT, ZERO, NEGATIVE, NAN, INF),
    *each("trainer.gradient_clip_algorithm", "max"),
    *each("trainer.num_sanity_val_steps", -2, NOT_INT, NAN),
    *each("trainer.check_val_every_n_epoch", ZERO, NEGATIVE, NOT_INT, NAN),
    *each("trainer.devices", ZERO, NEGATIVE, 2, NOT_INT),
    *each("trainer.accelerator", "nope", "tpu"),
    *each("trainer.enable_progress_bar", "maybe"), *each("trainer.enable_model_summary", "maybe"),
    *each("trainer.enable_checkpointing", "maybe"),
    *each("trainer.strategy", "ddp", "nope", add=True), *each("trainer.num_nodes", 2, add=True),
    *each("trainer.precision", "nope", add=True), *each("trainer.max_time", "abc", add=True),
    *each("trainer.limit_train_batches", FRACTION, 0.001, add=True),
    *each("trainer.limit_val_batches", NEGATIVE, add=True),
    *each("trainer.accumulate_grad_batches", ZERO, add=True),
    *each("trainer.logger", "true", add=True), *each("trainer.callbacks", "[]", add=True),
    *each("trainer.default_root_dir", "elsewhere", add=True),
    *each("trainer.foo", 1, add=True), *each("trainer.max_step", 5, add=True),
    # diagnostics and loggers
    *each("diagnostics.probe_every", ZERO, NEGATIVE, NOT_INT, NAN),
    *each("diagnostics.probe_size", ZERO, NOT_INT),
    *each("diagnostics.gradient_norms.spike_factor", NAN, NEGATIVE, NOT_INT),
    *each("diagnostics.gradient_norms.spike_window", ZERO), *each("diagnostics.gradient_norms.every_n_steps", ZERO),
    *each("diagnostics.gates.saturation", NEGATIVE, NAN), *each("diagnostics.gradient_flow.dtype", "float8"),
    *each("diagnostics.gates.foo", 1, add=True),
    *each("logger.csv.save_dir", 123, prefix=("logger=csv",)),
    *each("logger.wandb.offline", "maybe"),
    # unknown keys, without + (a typo of an existing key)
    *each("model.hiden_size", 8), *each("trainer.max_step", 5), *each("data.seqlen", 8), *each("sede", 1),
    *each("model.foo", 1, add=True), *each("data.foo", 1, add=True), *each("optim.foo", 1, add=True),
    # config-group choices misspelled
    *each("data", "addng", "imagenet"), *each("model", "lsmt"), *each("optim", "adm"), *each("trainer", "fast"),
    *each("logger", "tensorbord"), *each("diagnostics", "al"), *each("experiment", "quickstrat"),
    *each("hparams_search", "nope"), *each("debug", "smok"),
    *each("model.hidden_size", 64, prefix=("model.param_budget=5000",)),
    *each("model.hidden_size", "32,64", prefix=("-m", "model.param_budget=5000")),
    *each("model.hidden_size", 16, prefix=("experiment=chung_polyphonic",)),
    *each("model.param_budget", 20000, prefix=("-m", "hparams_search=adding_lr_hidden"), key="model.hidden_size"),
    # a group whose choices only experiments make: d2l's models without d2l's task
    *each("d2l", "lstm"), *each("d2l", "gru", add=True), *each("lstm_variant", "nig", add=True),
    *each("d2l", "lstm", prefix=("experiment=quickstart",)),
    # a Time Machine not in the cache, and a url that cannot serve it: refused before any job, naming data.path
    (("data=timemachine", "data.cache_dir=cache", "data.url=http://127.0.0.1:9/none.txt"),
     "data.path"),
    # interpolations that do not resolve, or resolve to a bad value
    *each("model.hidden_size", "${nope}", "${oc.env:RNNBENCH_TEST_UNSET}"),
    *each("extra.x", "${oc.env:RNNBENCH_TEST_UNSET}", add=True),
    *each("seed", "${oc.env:RNNBENCH_TEST_WORD}"), *each("data.seq_len", "${model.nope}"),
    *each("optim.lr", "${oc.decode:abc}"), *each("trainer.max_steps", "${data.nope}"),
    # sweeps in which one job of the grid is bad
    *each("model.hidden_size", "8,-1", prefix=("-m",)), *each("seed", "0,-1", prefix=("-m",)),
    *each("trainer.max_steps", "5,0", prefix=("-m",)), *each("model.cell", "rnn,nope", prefix=("-m",)),
    *each("optim.lr", "0.1,nan", prefix=("-m",)),
    *each("model.hidden_size", "0", prefix=("-m", "experiment=quickstart")),
    *each("logger.wandb.id", "shared", prefix=("-m", "seed=0,1"), add=True),
    *each("logger.wandb.id", "shared", prefix=OPTUNA, add=True),
    # intervals an Optuna sampler draws from: a bad bound is a value it may draw
    *each("optim.lr", "interval(-1,2)", "tag(log,interval(0,0.1))", prefix=OPTUNA),
    *each("model.hidden_size", "int(interval(0,64))", prefix=OPTUNA),
]

# Hydra's launcher and sweeper settings (rnnbench.config.validate_hydra, which the launch path calls)
HYDRA_CASES: list[tuple[tuple[str, ...], str]] = [
    *each("hydra.launcher.n_jobs", ZERO, prefix=JOBLIB), *each("hydra.launcher.verbose", NEGATIVE, prefix=JOBLIB),
    *each("hydra.launcher.prefer", "gpus", prefix=JOBLIB), *each("hydra.launcher.batch_size", ZERO, prefix=JOBLIB),
    *each("hydra.launcher.timeout", NEGATIVE, NAN, prefix=JOBLIB),
    *each("hydra.launcher.timeout_min", ZERO, prefix=SUBMITIT), *each("hydra.launcher.cpus_per_task", ZERO, prefix=SUBMITIT),
    *each("hydra.launcher.tasks_per_node", ZERO, 2, prefix=SUBMITIT), *each("hydra.launcher.mem_gb", ZERO, prefix=SUBMITIT),
    *each("hydra.launcher.nodes", 2, prefix=SUBMITIT),
    *each("hydra.launcher.array_parallelism", ZERO, prefix=SLURM), *each("hydra.launcher.timeout_min", -5, prefix=SLURM),
    *each("hydra.launcher.gpus_per_node", NEGATIVE, prefix=SLURM),
    *each("hydra.sweeper.n_trials", ZERO, NEGATIVE, prefix=OPTUNA), *each("hydra.sweeper.n_jobs", ZERO, prefix=OPTUNA),
    *each("hydra.sweeper.direction", "up", prefix=OPTUNA), *each("objective_direction", "up", prefix=OPTUNA),
    *each("hydra.sweeper.sampler.seed", NEGATIVE, prefix=OPTUNA),
    *each("hydra.sweeper.max_failure_rate", 2.0, prefix=OPTUNA),
    *each("objective", "null", prefix=OPTUNA),
    *each("hydra.sweep.dir", "${nope}", prefix=("-m",)), *each("hydra.run.dir", "${nope}"),
]

assert len({args for args, _ in CASES + HYDRA_CASES}) == len(CASES + HYDRA_CASES), "duplicate cases"


def case_id(case: tuple[tuple[str, ...], str]) -> str:
    return " ".join(case[0])


# A dozen cases, one of each kind of check, that also run the whole in-process launch (rnnbench.cli.main).
THROUGH_MAIN = [
    ("seed=abc",),  # a root setting's rule
    ("data=timemachine", "data.seq_len=100000"),  # a data module's rule, under a group choice
    (f"model.hidden_size={HUGE}",),  # the memory estimate
    ("optim=sgd", "optim.momentum=-1"),  # an optimizer's argument
    ("trainer.val_check_interval=0.5",),  # the Trainer, against the data's batches
    ("+trainer.strategy=ddp",),  # a Trainer argument added with +
    ("model.hiden_size=8",),  # a key the config lacks
    ("experiment=quickstrat",),  # a misspelled choice of an optional group
    ("seed=${oc.env:RNNBENCH_TEST_WORD}",),  # an interpolation resolving to a bad value
    ("-m", "model.cell=rnn,nope"),  # one bad job of a sweep
    (*JOBLIB, "hydra.launcher.n_jobs=0"),  # a launcher's setting
    (*OPTUNA, "objective=null"),  # a sweeper against the objective
    ("hydra.run.dir=${nope}",),  # Hydra's run dir
]
assert set(THROUGH_MAIN) <= {args for args, _ in CASES + HYDRA_CASES}, "each case through main() is a case above"

# Compositions shared by every case of this module: (config, overrides, return_hydra_config) -> the composed config.
COMPOSED: dict[tuple[str, tuple[str, ...], bool], DictConfig] = {}


def compose_each_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the launch path's validation compose each distinct set of config-group choices (and Hydra settings)
    once for the whole module: the same compositions, each case getting a copy to set its values on."""
    real = validation.compose

    def composed(config_name: str, overrides: list[str] | None = None, return_hydra_config: bool = False) -> DictConfig:
        key = (config_name, tuple(overrides or ()), return_hydra_config)
        if key not in COMPOSED:
            COMPOSED[key] = real(config_name, overrides=list(key[1]), return_hydra_config=return_hydra_config)
        return copy.deepcopy(COMPOSED[key])

    monkeypatch.setattr(validation, "compose", composed)


def refusal(arguments: tuple[str, ...]) -> str:
    """The line ``rnnbench train ARGUMENTS`` prints when its validation refuses them (as rnnbench.launch.train
    prints it); fails the test if they pass."""
    try:
        validation.check_every_job(list(arguments))
    except (RnnbenchError, HydraException) as error:
        return f"rnnbench: error: {Secrets.from_environment(arguments).scrub(' '.join(str(error).split()))}\n"
    pytest.fail(f"not refused: {' '.join(arguments)}")


@pytest.fixture
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working dir that no job may write to: a job that would start fails the test instead."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("RNNBENCH_TEST_WORD", "abc")
    monkeypatch.delenv("RNNBENCH_TEST_UNSET", raising=False)

    def no_job() -> None:
        raise AssertionError("a job would start: the bad input was not refused up front")

    monkeypatch.setattr("rnnbench.job.app.train", no_job, raising=False)
    return cwd


def assert_refused(code: int, out: str, err: str, setting: str, cwd: Path) -> None:
    lines = err.strip().splitlines()
    assert code == 2, f"exit status {code}; stderr: {err!r}"
    assert len(lines) == 1 and lines[0].startswith("rnnbench: error: "), f"stderr: {err!r}"
    assert lines[0].startswith(f"rnnbench: error: {setting}=") and " is not allowed: " in lines[0], lines[0]
    assert "Traceback" not in out + err
    assert list(cwd.iterdir()) == [], f"written: {sorted(p.name for p in cwd.iterdir())}"


@pytest.mark.parametrize("case", CASES + HYDRA_CASES, ids=case_id)
def test_bad_input_is_refused_before_any_job(case, empty_cwd, monkeypatch, capsys):
    arguments, setting = case
    compose_each_once(monkeypatch)
    err = refusal(arguments)
    out, printed = capsys.readouterr()
    assert printed == ""
    assert_refused(2, out, err, setting, empty_cwd)


@pytest.mark.parametrize("case", [case for case in CASES + HYDRA_CASES if case[0] in THROUGH_MAIN], ids=case_id)
def test_the_launch_refuses_bad_input_with_the_validations_line(case, empty_cwd, monkeypatch, capsys):
    arguments, setting = case
    with monkeypatch.context() as shared:
        compose_each_once(shared)
        expected = refusal(arguments)
    code = main(["train", *arguments])  # composing afresh, as a user's command does
    out, err = capsys.readouterr()
    assert_refused(code, out, err, setting, empty_cwd)
    assert err == expected


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("text") / "tiny.txt"
    path.write_text("The Time Traveller (for so it will be convenient to speak of him) was expounding.\n")
    return path


def test_a_text_too_short_for_the_windows_is_refused(tiny_text, empty_cwd, capsys):
    code = main(["train", "data=timemachine", f"data.path={tiny_text}"])
    out, err = capsys.readouterr()
    assert_refused(code, out, err, "data.path", empty_cwd)
    assert "characters after preprocessing" in err


@pytest.mark.parametrize("arguments,setting", [
    (("model.hidden_size=-1",), "model.hidden_size"),
    (("-m", "model.hidden_size=8,-1"), "model.hidden_size"),
    (("trainer.val_check_interval=0",), "trainer.val_check_interval"),
    (("optim=sgd", "optim.momentum=-1"), "optim.momentum"),
], ids=lambda value: " ".join(value) if isinstance(value, tuple) else value)
def test_the_command_refuses_bad_input(arguments, setting, tmp_path):
    result = subprocess.run([sys.executable, "-m", "rnnbench", "train", "logger=none", "trainer.max_steps=2",
                             *arguments], cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=PATIENCE)
    assert_refused(result.returncode, result.stdout, result.stderr, setting, tmp_path)


# ---------------------------------------------------------------------------------------------- Hydra's settings


def hydra_config(*overrides: str):
    with initialize_config_dir(str(config_dir()), version_base="1.3", job_name="rnnbench"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize("case", HYDRA_CASES, ids=case_id)
def test_validate_hydra_names_the_setting(case):
    arguments, setting = case
    multirun = "-m" in arguments
    with pytest.raises(ConfigError) as error:
        validate_hydra(hydra_config(*(a for a in arguments if a != "-m")), multirun)
    assert error.value.setting == setting and "\n" not in str(error.value)


@pytest.mark.parametrize("overrides", [
    (), ("hydra/launcher=joblib",), ("hydra/launcher=joblib", "hydra.launcher.n_jobs=-1"),
    ("hydra/launcher=submitit_local",), ("hydra/launcher=slurm",), ("hparams_search=adding_lr_hidden",),
    ("hparams_search=digits_lr_depth",), ("experiment=cells_vs_length",),
], ids=lambda o: " ".join(o) or "defaults")
def test_validate_hydra_accepts_the_shipped_settings(overrides):
    cfg = hydra_config(*overrides)
    validate_hydra(cfg, multirun=True)
    validate_hydra(cfg, multirun=False)


# ---------------------------------------------------------------------------------------------- good input


@pytest.mark.parametrize("arguments", [
    ("data=copy", "model.cell=gru", "model.num_layers=2", "model.bidirectional=true"),
    ("data=digits", "data.layout=pixels", "objective=best/val/accuracy", "objective_direction=maximize"),
    ("optim=sgd", "optim.momentum=0.9", "+optim.nesterov=true", "trainer.gradient_clip_val=1"),
    ("model.param_budget=20000", "model.cell=mingru"), ("model.embedding_size=16", "model.forget_bias=1.0"),
    ("trainer.max_steps=-1", "trainer.max_epochs=3", "trainer.check_val_every_n_epoch=1",
     "trainer.val_check_interval=0.5"),
    ("+trainer.strategy=single_device", "+trainer.limit_train_batches=0.5", "+trainer.deterministic=true"),
    ("threads=2", "seed=4294967295", "checkpoint=keep", "+extra.note=baseline", "logger=csv"),
    ("experiment=d2l_timemachine", f"data.path={SHARED_TEXT}"), ("debug=smoke", "experiment=depth_direction"),
    ("logger.wandb.save_dir=${hydra:runtime.output_dir}",),
], ids=" ".join)
def test_good_input_passes(arguments):
    assert preflight(list(arguments)) == 1


def test_a_whole_grid_of_good_input_passes():
    assert preflight(["-m", "experiment=clipping", "debug=smoke", "model.cell=lstm"]) == 4


def test_validation_writes_nothing_and_leaves_torch_as_it_was(compose_config, empty_cwd):
    import torch

    cfg = compose_config("+trainer.deterministic=true", "+trainer.benchmark=true")
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    validate(cfg)
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before
    assert list(empty_cwd.iterdir()) == []
