"""Property-based tests (hypothesis) of the three places that take input from users: the image-folder
loader, the config loader and the results/report path. Every case must end in a result or one clear
UserError (one line, naming what is wrong), never a raw traceback; the report escapes every string."""
import dataclasses
import html.parser
import io
import json
import math
import os
import re
import tempfile
import types
import typing
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from i2i_unlearn.config import (DataConfig, EvaluatorConfig, OptimConfig, TaskConfig, TokenizerTrainConfig,
                                TrainConfig, UnlearnConfig, load_yaml)
from i2i_unlearn.data import load_dataset
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.report import write_report
from i2i_unlearn.evaluation.results import validate_results
from builders import CLASSES, REFERENCE, make_results

# Derandomized by default: the same examples on every run, so CI is a pure function of the code.
# A fuzzing campaign with fresh examples: I2I_FUZZ_RANDOM=1 .venv/bin/pytest tests/test_fuzz.py
FUZZ = settings(max_examples=40, deadline=None, database=None,  # no .hypothesis/ folder in the repository
               derandomize=os.environ.get("I2I_FUZZ_RANDOM") != "1", suppress_health_check=[HealthCheck.too_slow])


def _one_line_error(exc: UserError) -> str:
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message, repr(message)
    assert "Traceback" not in message
    return message


# --- the image-folder loader ---

# (mode, format, suffix) combinations PIL writes; odd modes included
ENCODINGS = [("L", "PNG", ".png"), ("RGB", "JPEG", ".jpg"), ("RGBA", "PNG", ".png"), ("P", "PNG", ".png"),
             ("P", "GIF", ".gif"), ("LA", "PNG", ".png"), ("I;16", "PNG", ".png"), ("I;16", "TIFF", ".tif"),
             ("CMYK", "JPEG", ".jpeg"), ("CMYK", "TIFF", ".tiff"), ("1", "BMP", ".bmp"), ("I", "TIFF", ".tif"),
             ("F", "TIFF", ".tiff"), ("RGB", "WEBP", ".webp"), ("YCbCr", "JPEG", ".jpg"), ("LAB", "TIFF", ".tif")]
SIZES = st.one_of(st.tuples(st.integers(1, 6), st.integers(1, 6)), st.sampled_from([(1, 1), (2000, 1), (1, 1000)]))


@st.composite
def encoded_images(draw) -> tuple[str, bytes]:
    mode, fmt, suffix = draw(st.sampled_from(ENCODINGS))
    width, height = draw(SIZES)
    seed = draw(st.integers(0, 2 ** 16))
    pixels = torch.randint(0, 256, (height, width, 4), generator=torch.Generator().manual_seed(seed)).to(torch.uint8)
    image = Image.fromarray(pixels.numpy(), "RGBA")
    if mode == "LAB":   # PIL converts nothing to LAB: take three bands as L, a, b
        image = Image.merge("LAB", image.convert("RGB").split())
    else:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return suffix, buffer.getvalue()


# An entry of a class folder: (kind, payload). Kinds that must load, and kinds that must be refused.
GOOD = {"image", "symlink", "text file", "no suffix", "folder named like an image", "symlinked folder loop"}


@st.composite
def entries(draw):
    kind = draw(st.sampled_from(["image", "image", "truncated", "random bytes", "signature then garbage",
                                 "empty", "symlink", "broken symlink", "symlink loop", "text file", "no suffix",
                                 "folder named like an image", "symlinked folder loop", "non-UTF-8 name"]))
    suffix, data = draw(encoded_images())
    if kind == "truncated":
        data = data[:draw(st.integers(0, max(0, len(data) - 1)))]
    elif kind in ("random bytes", "text file", "no suffix"):
        data = draw(st.binary(max_size=64))
    elif kind == "signature then garbage":
        data = data[:draw(st.integers(1, 24))] + draw(st.binary(min_size=1, max_size=64))
    elif kind == "empty":
        data = b""
    return kind, suffix, data


def _write_entry(folder: Path, index: int, kind: str, suffix: str, data: bytes, good_image: Path) -> None:
    name = f"{index:02d}"
    if kind in ("image", "truncated", "random bytes", "signature then garbage", "empty"):
        (folder / f"{name}{suffix}").write_bytes(data)
    elif kind == "symlink":
        (folder / f"{name}.png").symlink_to(good_image)
    elif kind == "broken symlink":
        (folder / f"{name}.png").symlink_to(folder / "nowhere.png")
    elif kind == "symlink loop":
        (folder / f"{name}a.png").symlink_to(folder / f"{name}b.png")
        (folder / f"{name}b.png").symlink_to(folder / f"{name}a.png")
    elif kind == "text file":
        (folder / f"{name}.txt").write_bytes(data)
    elif kind == "no suffix":
        (folder / name).write_bytes(data)
    elif kind == "folder named like an image":
        (folder / f"{name}.png").mkdir()
    elif kind == "symlinked folder loop":
        (folder / f"{name}-loop").symlink_to(folder, target_is_directory=True)
    elif kind == "non-UTF-8 name":
        (folder / os.fsdecode(f"{name}-\xff".encode("latin-1") + suffix.encode())).write_bytes(data)


def _decodable(data: bytes) -> bool:
    """Whether PIL reads these bytes whole (a truncated file may still hold a whole image)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.convert("RGB")
        return True
    except Exception:
        return False


@FUZZ
@given(classes=st.lists(st.lists(entries(), min_size=1, max_size=3), min_size=1, max_size=3),
       channels=st.sampled_from([1, 3]), size=st.sampled_from([4, 8]))
def test_image_folder_loads_or_refuses_with_one_clear_error(classes, channels, size):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        good_image = Path(tmp) / "outside.png"
        Image.new("L", (3, 3), 128).save(good_image)
        expected, bad = 0, []
        for c, class_entries in enumerate(classes):
            folder = root / f"class{c}"
            folder.mkdir(parents=True)
            for i, (kind, suffix, data) in enumerate(class_entries):
                _write_entry(folder, i, kind, suffix, data, good_image)
                event(f"entry: {kind}")
                if kind in ("image", "symlink") or (kind in ("truncated", "random bytes", "signature then garbage")
                                                    and _decodable(data)):   # a cut may leave a whole image
                    expected += 1
                elif kind not in GOOD:
                    bad.append(kind)
        config = DataConfig(dataset="image-folder", root=str(root), channels=channels, image_size=size)
        try:
            images = load_dataset(config)
        except UserError as exc:
            message = _one_line_error(exc)
            event("refused: " + re.sub(r"/\S*", "PATH", message)[:60])
            assert bad or expected == 0, f"refused a folder of readable images: {message}"
            assert str(root) in message
            return
        event("loaded")
        assert not bad, f"loaded a folder holding {bad} without a word"
        assert len(images) == expected
        assert images.images.shape == (expected, channels, size, size)
        assert torch.isfinite(images.images).all() and images.images.min() >= 0 and images.images.max() <= 1
        assert len(images.ids) == len(set(images.ids)) == expected
        images.content_hash()   # what train records: every id is hashable text
        json.dumps(images.ids)


def test_image_folder_cases_found_by_fuzzing(tmp_path):
    """16-bit grey keeps its grey levels (PIL's own conversion clips them to white); LAB loads (PIL cannot
    convert it to L directly); a folder named like an image is no image; a name that is not UTF-8 is refused."""
    folder = tmp_path / "data" / "things"
    folder.mkdir(parents=True)
    Image.new("I;16", (4, 4), 30000).save(folder / "grey16.png")
    Image.merge("LAB", Image.new("RGB", (4, 4), (200, 128, 128)).split()).save(folder / "lab.tif")
    (folder / "empty.png").mkdir()
    images = load_dataset(DataConfig(dataset="image-folder", root=str(tmp_path / "data"), image_size=4))
    assert images.ids == ["things/grey16.png", "things/lab.tif"]
    assert torch.allclose(images.images[0], torch.full((1, 4, 4), 30000 / 65535), atol=1 / 255)
    (folder / os.fsdecode(b"caf\xe9.png")).write_bytes((folder / "grey16.png").read_bytes())
    with pytest.raises(UserError, match=r"file name is not valid UTF-8: .*things/caf\ufffd.png; rename it"):
        load_dataset(DataConfig(dataset="image-folder", root=str(tmp_path / "data"), image_size=4))


# --- the config loader ---

CONFIGS = [DataConfig, TaskConfig, OptimConfig, TrainConfig, TokenizerTrainConfig, UnlearnConfig, EvaluatorConfig]
# YAML a user may write, as text (so values YAML itself mis-parses, such as 1e-3 or an impossible date, come in)
SCALARS = ["null", "~", "true", "no", "0", "-1", "3", "1e-3", "1.5e-3", "0.25", "-0.5", ".nan", ".inf", "-.inf",
           "nan", "inf", "1" + "0" * 400, "-" + "9" * 400, "1e999", "two", "''", "Cat", "'3'", "2020-13-45",
           "2024-01-02", "0x1F", "[]", "{}", "[1, 2]", "[0.9, 0.95]", "['a', 'b']", "[Cat, Dog]", "[[1], [2]]",
           "{name: center-inpaint, ratio: 0.5}", "[{name: center-inpaint, ratio: 0.5}]", "[{name: x, ratio: .nan}]",
           "{family: mae}", "{a: {b: {c: [1, {d: null}]}}}", "!!binary aGVsbG8=", "'<script>'", "\"a\\nb\""]
YAML_VALUES = st.one_of(st.sampled_from(SCALARS),
                        st.text(max_size=20).map(lambda s: json.dumps(s)),        # any string, quoted
                        st.floats(allow_nan=True, allow_infinity=True).map(repr).map(
                            lambda r: {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}.get(r, r)),
                        st.integers(-10 ** 30, 10 ** 30).map(str))


def typed_values(hint) -> st.SearchStrategy:
    """Values of the declared type (so they reach the range checks): NaN, infinities and huge numbers included."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(st.none(), *(typed_values(a) for a in args if a is not type(None)))
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return st.fixed_dictionaries({}, optional={name: st.deferred(lambda h=h: typed_values(h))
                                                   for name, h in hints.items()})
    if origin in (list, tuple):
        return st.lists(typed_values(args[0]), max_size=3)
    if hint is float:
        return st.one_of(st.floats(), st.integers(-10 ** 400, 10 ** 400))
    if hint is int:
        return st.integers(-10 ** 30, 10 ** 30)
    if hint is bool:
        return st.booleans()
    if hint is dict:
        return st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=3)
    return st.text(max_size=10)


@st.composite
def config_files(draw):
    """A config file: some keys with values of their type (written by yaml), some with YAML text a user may
    type, perhaps an unknown key."""
    cls = draw(st.sampled_from(CONFIGS))
    hints = typing.get_type_hints(cls)
    chosen = draw(st.lists(st.sampled_from(sorted(hints)), min_size=1, max_size=4, unique=True))
    as_text = draw(st.lists(st.sampled_from(chosen), unique=True))
    typed = {key: draw(typed_values(hints[key])) for key in chosen if key not in as_text}
    lines = [yaml.safe_dump(typed, width=10 ** 6)] if typed else []
    lines += [f"{key}: {draw(YAML_VALUES)}\n" for key in as_text]
    if draw(st.booleans()):   # an unknown key, perhaps not even a string
        unknown = draw(st.sampled_from(["stepz", "1", "null", "true", "3.5", "'a b'", "'x\\ny'"]))
        lines.append(f"{unknown}: 1\n")
    return cls, chosen, "".join(lines)


def _floats(config):
    """Every float in a config (nested configs, lists and tuples included)."""
    if dataclasses.is_dataclass(config):
        for f in dataclasses.fields(config):
            yield from _floats(getattr(config, f.name))
    elif isinstance(config, (list, tuple)):
        for value in config:
            yield from _floats(value)
    elif isinstance(config, float):
        yield config


@FUZZ
@given(case=config_files())
@example(case=(OptimConfig, ["betas"], 'betas: "a\\nb"\n'))  # found by CI: the hint echoed the newline
def test_config_loader_gives_a_config_or_one_error_naming_the_key(case):
    cls, keys, text = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.yaml"
        path.write_text(text)
        try:
            config = load_yaml(cls, path)
        except UserError as exc:
            message = _one_line_error(exc)
            event(f"{cls.__name__}: refused")
            # names the file's problem (unknown keys, YAML syntax) or the key whose value is wrong
            assert ("run.yaml" in message and ("unknown key" in message or "not valid YAML" in message)
                    or any(key in message for key in keys)), message
            return
    event(f"{cls.__name__}: loaded")
    assert isinstance(config, cls)
    hints = typing.get_type_hints(cls)
    for key in keys:   # every value has its declared type (a nested config is a config)
        value, hint = getattr(config, key), hints[key]
        if dataclasses.is_dataclass(hint):
            assert isinstance(value, hint)
    # a NaN or an infinity is never a setting: it is refused when the file is read
    assert all(math.isfinite(x) for x in _floats(config)), text


@pytest.mark.parametrize("text, message", [
    ("alpha: .nan\n", r"run.yaml.alpha: expected a finite number, got nan"),
    ("optim: {lr: .inf}\n", r"run.yaml.optim.lr: expected a finite number, got inf"),
    ("alpha: 1" + "0" * 400 + "\n", r"run.yaml.alpha: expected a finite number, got 10{19}…\(401 characters\)"),
    ("steps: 2020-13-45\n", r"run.yaml is not valid YAML: month must be in 1..12"),
    ("steps: [1,\n", r"run.yaml is not valid YAML: while parsing"),   # PyYAML's message, on one line
    ("1: 2\nnull: 3\nstepz: 4\n", r"unknown key\(s\) 1, None, stepz; known: method"),
])
def test_config_loader_cases_found_by_fuzzing(tmp_path, text, message):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as error:
        load_yaml(UnlearnConfig, path)
    _one_line_error(error.value)


# --- the results/report path ---

HOSTILE = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "' onmouseover='alert(1)",
           "</td></tr></table><script>", "a & b &amp; c", "<!--", "]]>", "`|*_[x](javascript:alert(1))",
           "Ünïcödé 猫 🐈", "\u202eRTL", "\x00\x01\x7f", "line\nbreak", ""]
NAMES = st.one_of(st.sampled_from(HOSTILE), st.text(min_size=1, max_size=12),
                  st.builds(lambda a, b: a + "<script>" + b, st.text(max_size=4), st.text(max_size=4)))
# div: the box a wide table scrolls in; colgroup/col (with a style width in ch): the shared column widths
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "div", "table", "caption",
                "colgroup", "col", "thead", "tbody", "tr", "th", "td", "figure", "img", "figcaption"}
ALLOWED_ATTRIBUTES = {"lang", "charset", "name", "content", "class", "src", "alt", "style"}


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attributes, self.sources, self.styles = set(), set(), [], []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes |= {name for name, _ in attrs}
        self.sources += [value for name, value in attrs if name == "src"]
        self.styles += [value for name, value in attrs if name == "style"]


def _rename(results: dict, forget: str, other: str, model: str, text: str) -> dict:
    """The example results with user-controlled strings replaced: class, model, dataset, folder names."""
    results = json.loads(json.dumps(results).replace('"Cat"', json.dumps(forget)).replace('"Dog"', json.dumps(other)))
    results["metrics"][model] = results["metrics"].pop("unlearned")
    results["models"][model] = results["models"].pop("unlearned")
    results["models"][model]["dir"] = text
    results["models"][model]["method"] = text
    results["dataset"] = text
    results["evaluator"]["name"] = text
    results["settings"][text] = text
    results["targets"][0]["name"] = text
    results["versions"][text] = text
    return results


@FUZZ
@given(forget=NAMES, other=NAMES, model=NAMES, text=NAMES)
def test_report_escapes_every_string_taken_from_results(forget, other, model, text):
    if forget == other or {forget, other} & {*CLASSES, "no object"} or model in ("original", REFERENCE):
        event("skipped: the names collide")
        return   # names must stay distinct (a class list, a row per model)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = _rename(make_results(folder), forget, other, model, text)
        try:
            validate_results(results)
        except UserError as exc:
            event("refused: " + _one_line_error(exc)[:60])
            return
        (folder / "results.json").write_text(json.dumps(results))
        html_path, markdown_path = write_report(folder / "results.json")
        event("report written")
        page, markdown = html_path.read_bytes().decode(), markdown_path.read_bytes().decode()   # \r kept
    parser = _Tags()
    parser.feed(page)
    assert parser.tags <= ALLOWED_TAGS, parser.tags - ALLOWED_TAGS
    assert parser.attributes <= ALLOWED_ATTRIBUTES, parser.attributes - ALLOWED_ATTRIBUTES
    assert all(src.startswith("data:image/png;base64,") for src in parser.sources)
    assert all(re.fullmatch(r"width: \d+ch", style) for style in parser.styles)   # computed, never from results
    assert "<script" not in page.lower() and "<img src=x" not in page
    for name in (forget, model, text):   # shown, escaped
        assert html.escape(name) in page or len(name) == 0
    assert re.search(r"(?<!\\)<", markdown) is None   # every < in the Markdown is escaped as \<
