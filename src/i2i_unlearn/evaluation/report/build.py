"""The report's content and its order, decided once for both formats: build_document."""
from __future__ import annotations

from pathlib import Path

from i2i_unlearn.evaluation.report import audit_tables, prose, tables
from i2i_unlearn.evaluation.report.document import Document, Figure, Paragraph, Section, Tables
from i2i_unlearn.evaluation.results import SETS


def build_document(results: dict, images: dict[str, Path], front: tuple[dict, Path] | None = None,
                   audits: list[tuple[dict, dict[str, Path], dict[str, str]]] = ()) -> Document:
    """The report of a results.json and its figures (key -> checked PNG path), with the section of a front
    (front.json, its plot) and the Audit section of `audits`: (audit.json, figure key -> PNG path, figure key ->
    file name beside report.md) each. Sections in order: results, the paired differences, hidden region,
    collateral damage, targets, the trade-off front, audits, the figures, the instrument check, settings and
    provenance; empty ones left out."""
    sections = [_results(results), _paired(results), _hole(results), _collateral(results), _targets(results),
                _front(front) if front else None, _audits(list(audits)) if audits else None,
                *_figures(results, images), _instrument(results), _settings(results)]
    return Document(f"Unlearning results: {results['dataset']}", _subtitle(results),
                    [section for section in sections if section is not None])


def _subtitle(results: dict) -> str:
    scored = prose.SCORED_VAL if results.get("split", {}).get("scored", "test") == "val" else prose.SCORED_TEST
    return (f"Forget classes: {', '.join(results['forget_classes'])} · task {results['task']['name']}, "
            f"ratio {results['task']['ratio']:g} · seed {results['seed']} · {scored} · created {results['created']}")


def _results(results: dict) -> Section:
    notes = [prose.LEGEND] + ([prose.INTERVAL_NOTE] if results.get("intervals") else [])
    return Section("Results", [*map(Paragraph, notes),
                               Tables([tables.results_table(results, set_name) for set_name in SETS], "aligned")])


def _paired(results: dict) -> Section | None:
    paired = tables.paired_tables(results)
    if paired is None:
        return None
    base, paired_tables = paired
    return Section(f"Differences from {base}", [Paragraph(prose.PAIRED_NOTE.format(base=base)),
                                                 Tables(paired_tables, "aligned")])


def _hole(results: dict) -> Section | None:
    if not results.get("hole_metrics"):
        return None
    return Section("Hidden region only",
                   [Paragraph(prose.HOLE_NOTE), *(tables.hole_table(results, set_name) for set_name in SETS)])


def _collateral(results: dict) -> Section | None:
    collateral = tables.collateral_tables(results)
    if not collateral:
        return None
    worst, per_score = collateral
    return Section("Collateral damage per retain class",
                   [Paragraph(prose.COLLATERAL_NOTE), worst, Tables(per_score, "side-by-side")])


def _targets(results: dict) -> Section | None:
    return Section("Targets", [tables.targets_table(results)]) if results.get("targets") else None


def _front(front: tuple[dict, Path]) -> Section:
    record, plot = front
    # the plot's caption is the note just above it: the Markdown leaves it out
    return Section("Trade-off front", [Paragraph(prose.FRONT_NOTE), tables.front_table(record),
                                       Figure("front", plot, plot.name, prose.FRONT_NOTE, caption_in_markdown=False)])


def _audits(audits: list[tuple[dict, dict[str, Path], dict[str, str]]]) -> Section:
    notes = [prose.AUDIT_NOTE, prose.TELL_NOTE]
    if any(audit.get("relearning") for audit, _, _ in audits):
        notes.append(prose.RELEARN_NOTE)
    blocks = list(map(Paragraph, notes))
    for (audit, files, links), title in zip(audits, audit_tables.audit_titles([audit for audit, _, _ in audits])):
        figures = [Figure(key, files[key], links[key], caption)
                   for key, caption in audit_tables.audit_figures(audit, files)]
        blocks.append(Section(title, [Paragraph(audit_tables.audit_intro(audit), style="sub"),
                                      audit_tables.membership_table(audit),
                                      *filter(None, [audit_tables.lira_table(audit)]), audit_tables.tell_table(audit),
                                      *audit_tables.relearn_tables(audit), *figures], level=3))
    return Section("Audit", blocks)


def _figures(results: dict, images: dict[str, Path]) -> list[Section]:
    """The results' figures in report order: grids, T-SNE, any other figure (captioned by its key)."""
    def figure(key: str, caption: str) -> Figure:
        return Figure(key, images[key], results["images"][key], caption)

    grids = [figure(k, f"{k.removeprefix('grid_').removesuffix('_classes').capitalize()} set — "
                       f"{prose.CLASS_GRID_CAPTION if k.endswith('_classes') else prose.GRID_CAPTION}")
             for k in images if k.startswith("grid_")]
    tsne = [figure(k, prose.TSNE_CAPTION) for k in images if k == "tsne"]
    others = [figure(k, k) for k in images if not k.startswith("grid_") and k != "tsne"]
    sections = [("Outputs", grids), ("T-SNE", tsne), ("Other figures", others)]
    return [Section(title, figures) for title, figures in sections if figures]


def _instrument(results: dict) -> Section:
    check = results["instrument_check"]
    if check is None:
        return Section("Instrument check", [Paragraph(prose.INSTRUMENT_NOTE), Paragraph(prose.INSTRUMENT_NOT_RUN)])
    intro = tables.instrument_intro(check)
    # the HTML shades the forget classes; the Markdown, without shading, names them in the header
    return Section("Instrument check", [
        Paragraph(prose.INSTRUMENT_NOTE),
        Paragraph(f"{intro} {prose.INSTRUMENT_KEY_HTML}", markdown=f"{intro} {prose.INSTRUMENT_KEY_MD}"),
        tables.instrument_table(check, results["forget_classes"])])


def _settings(results: dict) -> Section:
    return Section("Settings and provenance",
                   [Section(title, [table], level=3) for title, table in tables.settings_tables(results)])
