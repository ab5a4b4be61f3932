"""The README's results summary: a block between two marker comments, made from docs/targets.json alone.

One line per shipped model: how the bench's targets of `ours` came out (every unlearning seed, with intervals:
docs/results.md), how the demo targets of `ours` as tuned came out on test (one seed each), and, apart from
those, the competence checks of the original. Written by benchmarks/make_results_page.py after targets.json;
tests/test_readme.py checks that the README holds what this makes from the current targets.json.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from i2i_unlearn.checkpoints import write_text_atomic
from i2i_unlearn.errors import UserError

BEGIN = "<!-- results summary: written by benchmarks/make_results_page.py from docs/targets.json -->"
END = "<!-- end of results summary -->"
VERDICTS = ("met", "missed", "tie", "not run", "not judged")


def counts(entries: list[dict]) -> str:
    """'2 met, 5 missed': every verdict that occurs, in a fixed order."""
    tally = Counter(e["verdict"] for e in entries)
    return ", ".join(f"{tally[v]} {v}" for v in VERDICTS if tally[v])


def _tuned(entries: list[dict]) -> str:
    """The demo targets of `ours` per tuning record (the diffusion model has two: two forget targets)."""
    by_json: dict[str, list[dict]] = {}
    for e in entries:
        by_json.setdefault(e["json"], []).append(e)
    if len(by_json) == 1:
        return counts(entries)
    return "; ".join(f"{Path(source).stem.removeprefix('tune-')}: {counts(group)}" for source, group in by_json.items())


def summary_lines(record: dict) -> list[str]:
    """The block, markers included, from a targets.json record."""
    entries = [e for e in record["targets"] if e.get("model")]
    lines = [BEGIN, "Generated, per shipped model ([`docs/targets.json`](docs/targets.json): each target's value, "
             "limit, JSON): `ours`'s bench targets over seeds ([results](docs/results.md)); its demo targets as "
             "tuned (test, one seed); its robustness; apart, the original's competence checks.", ""]
    for model in sorted({e["model"] for e in entries}):
        mine = [e for e in entries if e["model"] == model]
        bench = [e for e in mine if e["kind"] == "method" and e.get("bench")]
        tuned = [e for e in mine if e["kind"] == "method" and e["issue"] == 9 and e.get("run") == "ours"]
        competence = [e for e in mine if e["kind"] == "competence"]
        robust = [e for e in mine if e["issue"] == 33 and e.get("run") == "ours" and e.get("request") != "files"]
        robust_files = [e for e in mine if e["issue"] == 33 and e.get("run") == "ours" and e.get("request") == "files"]
        parts = [f"bench {counts(bench)}" if bench else "no bench",
                 f"tuned {_tuned(tuned)}" if tuned else "not tuned",
                 *([f"robustness {counts(robust)}"] if robust else []),
                 *([f"robustness (a file request) {counts(robust_files)}"] if robust_files else []),
                 f"competence {counts(competence)}" if competence else "no competence check"]
        lines.append(f"- `{Path(model).name}`: " + "; ".join(parts))
    return [*lines, END]


def replace_block(text: str, lines: list[str]) -> str:
    """`text` with its block (markers included) replaced by `lines`; a page without both markers is refused."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise UserError(f"no results summary block ({BEGIN} ... {END}) to rewrite")
    return text[:start] + "\n".join(lines) + text[end + len(END):]


def write_summary(readme: Path, record: dict) -> Path:
    write_text_atomic(readme, replace_block(readme.read_text(), summary_lines(record)))
    return readme
