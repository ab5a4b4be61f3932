"""report.html and report.md from results.json.

The report is built once as a document (build.py: sections of paragraphs, tables and figures, document.py) and
rendered from it to one self-contained HTML file (html.py) and to Markdown (markdown.py). records.py reads and
checks what goes in besides results.json: its figures, a front.json and audit.json files.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from i2i_unlearn.checkpoints import atomic_write, write_text_atomic
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.report.build import build_document
from i2i_unlearn.evaluation.report.document import Document
from i2i_unlearn.evaluation.report.html import render_html
from i2i_unlearn.evaluation.report.markdown import render_markdown
from i2i_unlearn.evaluation.report.records import audit_names, image_files, load_audit, load_front
from i2i_unlearn.evaluation.results import load_results

__all__ = ["Document", "build_document", "load_audit", "load_front", "render_html", "render_markdown",
           "write_report"]


def write_report(results_path: str | Path, out_dir: str | Path | None = None,
                 front_path: str | Path | None = None,
                 audit_paths: str | Path | list[str | Path] | tuple = ()) -> tuple[Path, Path]:
    """Write report.html and report.md for a results.json; returns their paths. `front_path`: a front.json of
    `unlearn --front`, shown as its own section. `audit_paths`: audit.json files of `audit`, shown in an Audit
    section (one subsection each); their figures are copied into out_dir as audit-<name>."""
    results_path = Path(results_path)
    results = load_results(results_path)
    out_dir = Path(out_dir) if out_dir is not None else results_path.parent
    images = image_files(results, results_path.parent)
    front = load_front(front_path) if front_path is not None else None
    if isinstance(audit_paths, (str, Path)):
        audit_paths = [audit_paths]
    audits = [load_audit(path) for path in audit_paths]
    links = audit_names(audits, out_dir)
    # (source, name in out_dir) of every figure the Markdown links: no two may share a name
    audit_figures = [(files[key], names[key]) for (_, files), names in zip(audits, links) for key in files]
    figures = [(path, path.name) for path in images.values()] + ([(front[1], front[1].name)] if front else [])
    seen = {}
    for source, name in figures + audit_figures:
        if name in seen and seen[name].resolve() != source.resolve():
            raise UserError(f"two figures, {seen[name]} and {source}, would both be {out_dir / name}: write the "
                            "report into another folder (--out)")
        seen[name] = source
    document = build_document(results, images, front,
                              [(audit, files, names) for (audit, files), names in zip(audits, links)])
    html_path, markdown_path = out_dir / "report.html", out_dir / "report.md"
    write_text_atomic(html_path, render_html(document))
    copies = [(path, path.name) for path in images.values()] if out_dir.resolve() != results_path.parent.resolve() \
        else []
    if front:
        copies.append((front[1], front[1].name))
    copies += [(source, name) for source, name in audit_figures if source.resolve() != (out_dir / name).resolve()]
    for source, name in copies:   # the Markdown links images by file name
        atomic_write(out_dir / name, lambda tmp, source=source: shutil.copyfile(source, tmp))
    write_text_atomic(markdown_path, render_markdown(document))
    return html_path, markdown_path
