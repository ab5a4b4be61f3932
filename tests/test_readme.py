"""Every command in README.md is run here, or checked against the parser that would read it.

What is extracted: every fenced ```bash / ```sh / ```console block (one command per line, `\\`
continues a line, `#` starts a comment), every ```python block, and every inline code span that
starts with `i2i-unlearn `, `make ` or `accelerate launch `. A fenced block in another language,
or a shell command of another program, fails the test: extend this file rather than leave a
command unchecked.

How each command is checked:

- `i2i-unlearn ...` commands are run for real, in-process (typer's CliRunner), in a temporary
  folder laid out like the repository, except those in PARSED_ONLY, which are parsed by the
  real click parser of `i2i_unlearn.cli` (an unknown or misspelt flag, a missing required flag
  or a value of the wrong type fails) and whose repository paths must exist and whose
  `--config` must load as the subcommand's config class.
- `make ...` commands: `make -n` must know the target, every `VAR=` must be a variable the
  Makefile uses, and the `i2i-unlearn` line the target runs is parsed as above. The runs
  themselves are `make demo`, `make demo-diffusion`, `make demo-vqgan` and `make test`
  (COVERED_BY_MAKE).
- `accelerate launch ...`: accelerate's own argparse parser reads the launcher's flags, then
  the `i2i_unlearn.cli` part is parsed as above (starting processes is docs/distributed.md's).
- Python blocks are executed, in the same temporary folder; so is the toy family of
  docs/families.md, which backs the README's claim that a subclass of I2IModel works with the
  methods.
- The proxy-set command reads Fashion-MNIST from Debian's dataset-fashion-mnist package; where
  that is not installed, it is parsed only (and the test says so by skipping).

What the README is (issue 31): a user's guide of at most README_MAX_CHARS characters that types
no measured number (measurements live in generated pages: docs/results.md, benchmarks/results/,
and docs/findings.md says what they show). So this file also checks the README's length, that
every number in its prose is a setting or a version read from the code (_readme_numbers), and that
every relative link of the README and of the docs pages points to a file (and an in-page anchor
to a heading).

The temporary folder (the README's paths -> what this test puts there):

    pretrained/mae-animal-mnist              a tiny MAE as in conftest.py (trained 4 steps), whose data
                                             split holds out 5 test and 5 validation images per class
    pretrained/mae-animal-mnist-without-cat  the same tiny MAE (stands in for the retrained reference)
    pretrained/evaluator-animal-mnist        the tiny evaluator of conftest.py
    configs/                                 the repository's configs, unchanged (see STEP_CAP)
    forget.txt                               20 ids of Animal-MNIST training images
    photos/                                  an image folder: Cat/ and Dog/, 160 random 32 px grey images each
    my-vit-mae/                              a tiny transformers ViTMAEForPreTraining (test_import.make_mae)
    my-pipeline/                             a tiny diffusers pipeline folder: unet/, scheduler/,
                                             model_index.json (test_import.make_unet)
    my-dinov2/                               a tiny random transformers Dinov2Model (an hf: evaluator)
    runs/, models/                           written by the commands themselves

STEP_CAP: the recipes in configs/ are the real ones (loaded, checked, used), but every
`unlearn`, `train` and `train-evaluator` run, from the CLI or the Python API, stops after
STEP_CAP steps with batches of at most BATCH_CAP images: the README's step counts are read and
validated, not spent. A `train-evaluator` run scores its accuracy and instrument check on TEST_CAP test images
per class (its recipe holds out 100).
"""
from __future__ import annotations

import copy
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.main import get_command
from typer.testing import CliRunner

import i2i_unlearn.evaluation.evaluator
import i2i_unlearn.train
import i2i_unlearn.unlearn
from i2i_unlearn.cli import app
from i2i_unlearn.config import EvaluatorConfig, TokenizerTrainConfig, TrainConfig, UnlearnConfig, load_yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLI = get_command(app)
runner = CliRunner()

STEP_CAP, BATCH_CAP, TEST_CAP = 2, 8, 5

# Commands parsed, not run (matched by a substring of the command), and where they are run instead.
PARSED_ONLY = {
    "train-tokenizer": "a VQ-GAN tokenizer run; tests/test_cli.py trains a tiny one through the CLI",
    "configs/vqgan-cat-dog.yaml": "the transformer on the shipped tokenizer; tests/test_cli.py trains a tiny "
                                  "vqgan on a tiny tokenizer through the CLI",
    "--family diffusion": "its validation check samples the 500 validation images of Animal-MNIST with 20 DDIM "
                          "steps; tests/test_import.py imports a tiny pipeline folder for real",
    "accelerate launch": "starting processes: docs/distributed.md and its tests",
    "i2i-unlearn audit": "tests/evaluation/audit/test_audit.py audits tiny models through the same code",
    "--proxy-classes Sandal,Bag": "the default budgeted run measures Cat recognition on validation, and the stand-in "
                                  "MAE here draws no recognisable Cat, which the budget refuses (as it should); "
                                  "tests/data/test_proxy.py runs proxies, tests/controllers/test_budget.py the default budget",
    "--audit": "needs the audit above; tests/evaluation/report/test_report_audit.py reports a real audit of tiny models",
    "--retain-budget": "tests/controllers/test_budget.py runs budgeted unlearning on tiny models; the stand-in MAE here, trained "
                       "4 steps, draws no recognisable Cat, which a budget on recognition refuses (as it should)",
    "i2i-unlearn bench": "reads benchmarks/, which the temporary folder does not have; tests/bench/test_bench.py runs a "
                         "tiny bench",
}
# The make targets the README names are run by hand (and on a fresh clone), not by this test.
COVERED_BY_MAKE = {
    "fashion-mnist": "installs Debian's dataset-fashion-mnist with apt-get as root (`make bench` runs it first); "
                     "the tests do not need the package",
    "demo": "`make demo` runs `i2i-unlearn demo --family mae`: unlearn, evaluate, report on the shipped models",
    "demo-diffusion": "`make demo-diffusion`",
    "demo-vqgan": "`make demo-vqgan`",
    "test": "`make test` is this suite",
    "bench": "hours on the shipped models; tests/bench/test_bench.py runs a tiny bench through the same command",
}
CONFIG_CLASSES = {"train": TrainConfig, "train-tokenizer": TokenizerTrainConfig, "unlearn": UnlearnConfig,
                  "train-evaluator": EvaluatorConfig, "demo": UnlearnConfig}
SHELL = ("bash", "sh", "console")


# --- reading the README ------------------------------------------------------------------------

def fenced_blocks(text: str) -> list[tuple[str, str, int]]:
    """(language, body, line number) of every fenced block."""
    return [(m.group(1).strip(), m.group(2), text[:m.start()].count("\n") + 1)
            for m in re.finditer(r"^```([^\n]*)\n(.*?)^```", text, re.S | re.M)]


def shell_commands(body: str) -> list[str]:
    """One command per logical line (`\\` continues it), comments and prompts dropped."""
    commands = []
    for line in body.replace("\\\n", " ").splitlines():
        line = line.strip()
        if line.startswith("$ "):
            line = line[2:]
        words = shlex.split(line, comments=True)
        if words:
            commands.append(shlex.join(words))
    return commands


def readme_commands() -> list[str]:
    text = README.read_text()
    return [command for language, body, _ in fenced_blocks(text) if language in SHELL
            for command in shell_commands(body)]


def inline_commands() -> list[str]:
    text = re.sub(r"^```.*?^```", "", README.read_text(), flags=re.S | re.M)
    return [span for span in re.findall(r"`([^`\n]+)`", text)
            if span.startswith(("i2i-unlearn ", "make ", "accelerate launch "))]


# --- checking a command without running it -----------------------------------------------------

def parse_cli(args: list[str]):
    """Parse `i2i-unlearn ARGS` with the real click parser; unknown flags, missing ones and bad types raise."""
    assert args, "no subcommand"
    name, *rest = args
    assert name in CLI.commands, f"unknown subcommand {name!r}; the CLI has {sorted(CLI.commands)}"
    return CLI.commands[name].make_context(f"i2i-unlearn {name}", list(rest))


def check_parsed(args: list[str]) -> None:
    """Parse, and check what a parse cannot: the repository files named exist, a --config loads."""
    context = parse_cli(args)
    for word in args:
        if word.startswith(("configs/", "pretrained/", "benchmarks/")):
            assert (ROOT / word).exists(), f"{word} does not exist in the repository"
    config = context.params.get("config")
    if config is not None and args[0] in CONFIG_CLASSES:
        load_yaml(CONFIG_CLASSES[args[0]], ROOT / config)


def option_names(subcommand: str) -> set[str]:
    return {name for param in CLI.commands[subcommand].params for name in (*param.opts, *param.secondary_opts)}


def check_flags_exist(args: list[str]) -> None:
    """For fragments with placeholders (`...`): the subcommand and every --flag must exist."""
    name = args[0]
    assert name in CLI.commands, f"unknown subcommand {name!r}"
    for word in args[1:]:
        if word.startswith("--"):
            assert word.split("=")[0] in option_names(name), f"i2i-unlearn {name} has no option {word}"


def check_accelerate(args: list[str], fragment: bool = False) -> None:
    from accelerate.commands.launch import launch_command_parser
    try:
        launch = launch_command_parser().parse_args(args[2:])
    except SystemExit:   # argparse has printed which flag it does not know
        pytest.fail(f"accelerate launch does not take {shlex.join(args[2:])} (its message is above)")
    assert launch.module and launch.training_script == "i2i_unlearn.cli", "launch the CLI as a module: -m i2i_unlearn.cli"
    (check_flags_exist if fragment else check_parsed)(list(launch.training_script_args))


def check_make(args: list[str]) -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = [word for word in args[1:] if "=" not in word and word != "..."]
    for word in args[1:]:
        if "=" in word:
            variable = word.split("=")[0]
            assert f"$({variable})" in makefile, f"the Makefile uses no variable {variable}"
    if not targets:
        return
    for target in targets:
        assert target in COVERED_BY_MAKE, f"make {target}: say in COVERED_BY_MAKE what runs it"
    result = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(ROOT), *args[1:]], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.replace("\\\n", " ").splitlines():   # a recipe's `\` continues its line
        first = line.split(maxsplit=1)[:1]   # a shell `if` or `for`, apt-get, python: not this test's to parse
        if first and first[0].endswith("bin/i2i-unlearn"):
            check_parsed(shlex.split(line)[1:])


# --- the temporary repository ------------------------------------------------------------------

@pytest.fixture(scope="module")
def tree(tmp_path_factory, few_held_out_model_dir, tiny_evaluator_dir) -> Path:
    from conftest import FEW_HELD_OUT
    from builders import make_mae, make_unet

    from i2i_unlearn.config import DataConfig
    from i2i_unlearn.data import load_split
    root = tmp_path_factory.mktemp("readme")
    # The tiny MAE holds out 5 test and 5 validation images per class (not 100 and 50): what
    # `evaluate` scores, and so its run time, is the model's held-out split.
    (root / "pretrained").mkdir()
    (root / "pretrained" / "mae-animal-mnist").symlink_to(few_held_out_model_dir)
    (root / "pretrained" / "mae-animal-mnist-without-cat").symlink_to(few_held_out_model_dir)
    (root / "pretrained" / "evaluator-animal-mnist").symlink_to(tiny_evaluator_dir)
    (root / "configs").symlink_to(ROOT / "configs")
    (root / "forget.txt").write_text("".join(f"{i}\n" for i in load_split(DataConfig(**FEW_HELD_OUT)).train.ids[:20]))
    # the README's example id is one a forget list of the shipped models may name (a training image)
    assert "animal-mnist/00042" in load_split(DataConfig()).train.ids
    rng = np.random.default_rng(0)
    for name in ("Cat", "Dog"):
        (root / "photos" / name).mkdir(parents=True)
        for i in range(160):
            Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(root / "photos" / name / f"{i}.png")
    make_mae(root / "my-vit-mae")
    make_unet(root / "my-pipeline" / "unet", root / "my-pipeline" / "scheduler")
    (root / "my-pipeline" / "model_index.json").write_text('{"_class_name": "DDPMPipeline"}')
    from transformers import Dinov2Config, Dinov2Model
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, mlp_ratio=2, image_size=32,
                             patch_size=8)).save_pretrained(root / "my-dinov2")
    return root


@pytest.fixture
def in_tree(tree, monkeypatch) -> Path:
    """cwd = the temporary repository; every unlearning and training run capped at STEP_CAP steps."""
    monkeypatch.chdir(tree)

    def cap(config, *batch_keys):
        config = copy.deepcopy(config)
        config.steps = min(config.steps, STEP_CAP)
        for key in batch_keys:
            if getattr(config, key, None):
                setattr(config, key, min(getattr(config, key), BATCH_CAP))
        return config

    real_unlearn = i2i_unlearn.unlearn.unlearn
    real_train = i2i_unlearn.train.train
    real_train_evaluator = i2i_unlearn.evaluation.evaluator.train_evaluator

    def unlearn(model_dir, config, *args, **kwargs):
        config = cap(config, "batch_size", "retain_batch_size")
        if config.retain_budget is not None:   # the default budgeted run: measured at each capped step, on a few images
            config.checkpoint_every, config.budget_images = 1, min(config.budget_images, BATCH_CAP)
        if config.stop_at_auc is not None:     # a file request's default stop: measured at each capped step
            config.checkpoint_every = 1
        return real_unlearn(model_dir, config, *args, **kwargs)

    def train(config, *args, **kwargs):
        return real_train(cap(config, "batch_size"), *args, **kwargs)

    def train_evaluator(config, *args, **kwargs):   # scored on TEST_CAP test images per class
        config = cap(config, "batch_size")
        config.data.test_per_class = min(config.data.test_per_class, TEST_CAP)
        return real_train_evaluator(config, *args, **kwargs)

    monkeypatch.setattr(i2i_unlearn.unlearn, "unlearn", unlearn)
    monkeypatch.setattr(i2i_unlearn.train, "train", train)
    monkeypatch.setattr(i2i_unlearn.evaluation.evaluator, "train_evaluator", train_evaluator)
    return tree


def run_python(path: Path, body: str, line: int, monkeypatch) -> dict:
    """Execute a documentation block as a module of its own (dataclasses look their module up),
    its line numbers those of the file."""
    module = types.ModuleType(f"doc_example_{path.stem}_{line}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile("\n" * line + body, str(path), "exec"), module.__dict__)
    return module.__dict__


def fashion_mnist_installed() -> bool:
    from i2i_unlearn.data.datasets import FASHION_MNIST_DEFAULT_ROOT
    return Path(FASHION_MNIST_DEFAULT_ROOT).is_dir()


# --- the tests ---------------------------------------------------------------------------------

def test_every_fenced_block_is_shell_or_python_and_every_command_is_known():
    blocks = fenced_blocks(README.read_text())
    assert blocks, "no fenced blocks found"
    for language, body, line in blocks:
        assert language in (*SHELL, "python"), f"README.md:{line}: a ```{language} block; teach test_readme.py to check it"
    for command in readme_commands():
        assert command.startswith(("i2i-unlearn ", "make ", "accelerate launch ")), \
            f"{command!r}: teach test_readme.py how to run or check it"
    assert readme_commands()[:2] == ["make demo", "make test"], "the README must open with make demo and make test"


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command(command, request):
    args = shlex.split(command)
    reason = next((why for key, why in PARSED_ONLY.items() if key in command), None)
    if args[0] == "make":
        check_make(args)
    elif args[0] == "accelerate":
        check_accelerate(args)
    elif reason is not None:
        check_parsed(args[1:])
    else:
        if "--proxy-dataset" in args and "fashion-mnist" in args and not fashion_mnist_installed():
            check_parsed(args[1:])
            pytest.skip("Fashion-MNIST (Debian's dataset-fashion-mnist) is not installed: parsed only")
        request.getfixturevalue("in_tree")
        check_parsed(args[1:])   # typos fail here with the parser's message, before anything runs
        result = runner.invoke(app, args[1:])
        assert result.exit_code == 0, f"{command}\n{result.output}\n{result.exception!r}"


@pytest.mark.parametrize("span", inline_commands())
def test_readme_inline_command(span):
    args = shlex.split(span.replace("\\|", "|"))
    fragment = "..." in args or any(word.startswith("<") or "|" in word for word in args)
    if args[0] == "make":
        check_make(args)
    elif args[0] == "accelerate":
        check_accelerate(args, fragment=True)
    elif len(args) == 1 or args[1] == "--help" or args[1].startswith("<"):
        assert all(word == "--help" or word.startswith("<") for word in args[1:]), span
    elif fragment:
        check_flags_exist(args[1:])
    else:
        parse_cli(args[1:])


def test_python_blocks_run(in_tree, monkeypatch):
    blocks = [(body, line) for language, body, line in fenced_blocks(README.read_text()) if language == "python"]
    assert blocks, "the README has no Python example"
    for body, line in blocks:
        namespace = run_python(README, body, line, monkeypatch)
    results = namespace["results"]   # the example's evaluation really scored both models
    assert set(results["models"]) == {"original", "unlearned"} and Path(namespace["html"]).is_file()
    assert namespace["filled"].shape == namespace["dogs"].shape


def test_the_toy_family_of_docs_families_md_trains_and_unlearns(in_tree, monkeypatch):
    """The README's claim that a subclass of I2IModel works with the methods, shown in docs/families.md."""
    from i2i_unlearn.models import MODELS
    path = ROOT / "docs" / "families.md"
    blocks = [(body, line) for language, body, line in fenced_blocks(path.read_text()) if language == "python"]
    assert len(blocks) == 1
    registered = dict(MODELS)
    try:
        namespace = run_python(path, *blocks[0], monkeypatch)
        toy, trained = namespace["toy"], namespace["load_model"]("runs/toy")
        assert type(toy).__name__ == "ToyInpainter"
        assert all(a.equal(b) for a, b in zip(toy.decoder.state_dict().values(), trained.decoder.state_dict().values()))
    finally:   # the toy family leaves the registry: other tests list the registered families
        MODELS.clear()
        MODELS.update(registered)


def test_every_subcommand_is_in_the_readme_table():
    text = README.read_text()
    table = text[text.index("| subcommand |"):text.index("## Python API")]
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", table, re.M))
    missing = set(CLI.commands) - documented
    assert not missing, f"subcommands missing from the README's table: {sorted(missing)}"
    assert documented <= set(CLI.commands), f"the table names no-such subcommands: {sorted(documented - set(CLI.commands))}"


def test_the_tasks_methods_and_families_of_the_concepts_are_the_registered_ones():
    from i2i_unlearn import METHODS, MODELS
    from i2i_unlearn.tasks import TASKS
    text = README.read_text()
    rows = set(re.findall(r"^\| `([a-z-]+)` \|", text[text.index("## Concepts"):text.index("## Command line")], re.M))
    assert set(TASKS) <= rows and set(MODELS) <= rows
    assert {"ours", "max-loss", "noisy-label", "retain-label", "random-encoder", "retrain"} <= rows
    assert rows <= set(TASKS) | set(METHODS) | set(MODELS), rows - set(TASKS) - set(METHODS) - set(MODELS)


def heading_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation but `-` and `_` dropped, spaces
    turned into `-` (a repeated heading gets `-1`, `-2`, ...)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    anchors: set[str] = set()
    for heading in re.findall(r"^#+ +(.+?) *#*$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


# Every page whose links are checked (docs/results.md is generated by benchmarks/make_results_page.py: not here).
LINKED_PAGES = ["README.md", "docs/findings.md", "docs/cli.md", "docs/families.md", "docs/results-notes.md",
                "docs/distributed.md", "docs/budget.md", "docs/proxy.md", "docs/your-own-data.md"]


@pytest.mark.parametrize("page", LINKED_PAGES)
def test_relative_links_point_to_files(page):
    path = ROOT / page
    text = path.read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M))
    for link in links:
        if "://" in link or link.startswith("mailto:"):
            continue
        target, _, anchor = link.partition("#")
        if target:
            resolved = (path.parent / target).resolve()
            assert resolved.exists(), f"{page} links to a missing file: {target}"
            assert resolved.is_relative_to(ROOT), f"{page} links outside the repository: {target}"
        elif anchor:
            assert anchor in heading_anchors(text), f"{page} links to #{anchor}, which is no heading of it"


# The generated pages the README linked before its results and known limits moved to docs/findings.md.
MOVED_RESULT_PAGES = ["competence", "tune-mae", "tune-vqgan", "tune-diffusion", "tune-diffusion-noise-context",
                      "diffusion_forget_signal", "retrain_spread_mae_animal_mnist", "retrain_spread_vqgan_cat_dog",
                      "mae_plateau", "mae_plateau_fashion", "audit-mae", "audit-vqgan", "audit-diffusion",
                      "proxy-mae", "budget-mae"]


def test_the_results_and_known_limits_moved_to_docs_findings_md():
    """docs/findings.md links every generated page the README's Results and Known limits linked, and the
    README's short Results section links the three pages about results."""
    findings = (ROOT / "docs" / "findings.md").read_text()
    assert "## Known limits" in findings
    for name in MOVED_RESULT_PAGES:
        assert f"](../benchmarks/results/{name}.md)" in findings, f"docs/findings.md does not link {name}.md"
    readme = README.read_text()
    results = readme[readme.index("## Results"):]
    for target in ("docs/results.md", "docs/findings.md", "docs/results-notes.md"):
        assert f"]({target})" in results, f"the README's Results section does not link {target}"


README_MAX_CHARS = 15_000


def test_the_readme_is_a_short_users_guide():
    size = len(README.read_bytes())   # what `wc -c README.md` counts
    assert size <= README_MAX_CHARS, (f"README.md has {size} bytes, more than {README_MAX_CHARS}: move "
                                      "explanations to docs/ and link them")
    headings = re.findall(r"^## (.+)$", README.read_text(), re.M)
    for section in ("Quick start", "Concepts", "Command line", "Python API", "Your own model and photos",
                    "Audit and benchmark", "Many processes or GPUs", "Reproducibility", "Results"):
        assert section in headings, f"the README has no section {section!r}"
    assert "Known limits" not in headings, "the known limits live in docs/findings.md"


def _readme_numbers() -> dict[str, object]:
    """Every number the README's prose may type, each with whether the code still says it (the comment names
    what it is). None of them is measured: measurements live in generated pages."""
    import tomllib

    from i2i_unlearn.controllers.budget import DEFAULT_RETAIN_BUDGET
    from i2i_unlearn.config import DataConfig
    from i2i_unlearn.models.diffusion import DiffusionConfig
    from i2i_unlearn.models.vqgan import VQGANConfig
    python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    return {
        "3.11": python == ">=3.11",                                    # the Python the project needs
        "2024": True,                                                  # the paper's venue, ICLR 2024
        "100": DataConfig().test_per_class == 100,                     # held-out test images per class
        "50": DataConfig().val_per_class == 50,                        # validation images per class
        "0.5": True, "0.75": True,                                     # example ratios of the tasks' table
        "8": VQGANConfig().decode_steps == 8,                          # MaskGIT steps of the vqgan family
        "20": DiffusionConfig().sampler_steps == 20,                   # DDIM steps of the diffusion family
        "1.15": DEFAULT_RETAIN_BUDGET == 1.15,                         # the default retain budget
        "2": "sys.exit(2)" in (ROOT / "src" / "i2i_unlearn" / "cli" / "__init__.py").read_text(),   # exit code of refused input
    }


def prose_numbers(markdown: str) -> list[str]:
    """The numbers typed in a page's prose and tables: fenced and indented code, inline code, link targets
    and names with digits in them (i2i, E0, sha256) left out."""
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    text = re.sub(r"^ {4,}\S.*$", "", text, flags=re.M)   # the indented formula
    text = re.sub(r"`[^`]*`", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return re.findall(r"(?<![\w.])\d+(?:[.,]\d+)*", text)


def typed_numbers_not_settings(markdown: str) -> list[str]:
    allowed = _readme_numbers()
    return [number for number in prose_numbers(markdown) if number not in allowed]


def without_generated_summary(markdown: str) -> str:
    """The README but its results summary, which benchmarks/make_results_page.py writes (checked below)."""
    from i2i_unlearn.bench.page.summary import BEGIN, END
    start, end = markdown.index(BEGIN), markdown.index(END)
    return markdown[:start] + markdown[end + len(END):]


def test_the_readme_types_no_measured_number():
    """A number a user should see is in a generated page the README links (docs/results.md, docs/findings.md)
    or in its generated summary; the README's own numbers are settings and versions, each checked against the
    code here."""
    unknown = typed_numbers_not_settings(without_generated_summary(README.read_text()))
    assert not unknown, (f"README.md types the numbers {unknown}: if measured, they belong in a generated page "
                         "(or docs/findings.md), linked from the README; if a setting, add it to _readme_numbers "
                         "with the code it is read from")
    stale = [number for number, holds in _readme_numbers().items() if not holds]
    assert not stale, f"the README says {stale}, which the code no longer says (see _readme_numbers)"
    # the check catches a measurement typed in prose, and leaves commands, ids and version pins alone
    assert typed_numbers_not_settings("costs 1.83x retain FID (AUC 0.40) in 230 s") == ["1.83", "0.40", "230"]
    assert typed_numbers_not_settings("`--alpha 0.025`, `torch==2.13.0`, sha256, i2i, E0, [a](x-2.md)") == []


def test_the_results_summary_is_the_one_docs_targets_json_makes():
    """The README's results summary is generated from docs/targets.json, which is generated from the JSON in
    benchmarks/results: both up to date (else rerun benchmarks/make_results_page.py)."""
    import json

    from i2i_unlearn.bench.page.summary import BEGIN, END, summary_lines
    from i2i_unlearn.bench.page.targets_file import collect
    targets = json.loads((ROOT / "docs" / "targets.json").read_text())
    assert targets == json.loads(json.dumps(collect(ROOT / "benchmarks" / "results", ROOT))), \
        "docs/targets.json is stale: run benchmarks/make_results_page.py"
    text = README.read_text()
    block = text[text.index(BEGIN):text.index(END) + len(END)]
    assert block == "\n".join(summary_lines(targets)), "the README's results summary is stale: run " \
                                                         "benchmarks/make_results_page.py"
    assert "## Results" in text[:text.index(BEGIN)] and "](docs/results.md)" in block


def test_the_results_page_is_the_one_its_json_makes(tmp_path):
    """docs/results.md, made again from the committed JSON by benchmarks/make_results_page.py into another folder,
    is the committed page byte for byte (else it is stale: rerun the script)."""
    import importlib.util
    import shutil
    loader = importlib.util.spec_from_file_location("make_results_page", ROOT / "benchmarks" / "make_results_page.py")
    script = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(script)
    shutil.copyfile(README, tmp_path / "README.md")
    assert script.main(["--out", str(tmp_path / "results.md"), "--readme", str(tmp_path / "README.md")]) == 0
    assert (tmp_path / "results.md").read_text() == (ROOT / "docs" / "results.md").read_text(), \
        "docs/results.md is stale: run benchmarks/make_results_page.py"
    assert (tmp_path / "README.md").read_text() == README.read_text()
