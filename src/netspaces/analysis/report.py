"""The self-contained HTML report, and writing every output file atomically.

The page embeds its images as base64 data URIs and its CSS inline, so it opens offline
and can be mailed as one file.
"""

from __future__ import annotations

import base64
import html
import json
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

from netspaces.analysis.populations import Population
from netspaces.analysis.stats import ci_text
from netspaces.analysis.summary import MIN_N_VALIDATED, Analysis
from netspaces.record import atomic_target

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #222; line-height: 1.4; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem;
     border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .95rem; }
th, td { border: 1px solid #ccc; padding: .3rem .7rem; text-align: right; }
th { background: #f2f4f7; } td.text, th:first-child { text-align: left; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9rem; } .notes li { color: #555; } .warnings li { color: #a00; }
"""

_CAPTIONS = {
    "edf": "Error EDFs: fraction of models with error at most x.",
    "edf_norm": "Normalized error EDFs: models reweighted to an even complexity distribution.",
    "complexity": "Complexity: params and activations vs flops (log-log); fitted exponents with their 95% CI "
    "where a population has enough models.",
}


def _cell(value: object) -> str:
    """Numbers right-aligned to 4 significant digits (summary.json has them in full), text left."""
    if isinstance(value, float):
        return f"<td>{value:.4g}</td>"
    if isinstance(value, int):
        return f"<td>{value}</td>"
    return f'<td class="text">{html.escape(str(value))}</td>'


def _table(table_id: str, header: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _image_id(file_name: str) -> str:
    return Path(file_name).stem


def _figure(file_name: str, png: bytes) -> str:
    image_id = _image_id(file_name)
    alt = {"edf": "EDF", "edf_norm": "normalized EDF"}.get(image_id, image_id.replace("_", " "))
    caption = _CAPTIONS.get(image_id)
    if caption is None and image_id.startswith("params_"):
        caption = "Error vs each design parameter; shaded: bootstrap 95% good range of the best model."
    elif caption is None and image_id.startswith("widths_"):
        caption = "Per-block widths of the best models (solid) and their quantized-linear fits (dashed)."
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img id="{html.escape(image_id)}" alt="{html.escape(alt)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{html.escape(file_name)}: '
        f"{html.escape(caption or '')}</figcaption></figure>"
    )


def _alpha(summary: dict) -> str:
    alphas = {f"{k['power']['alpha']:g}" for k in summary["ks"].values() if "power" in k}
    return ", ".join(sorted(alphas)) or "–"


def _baselines_table(summary: dict) -> str:
    """Each baseline against each population: its error, flops and the share of models it beats."""
    rows = [
        [
            name,
            b["error"],
            "–" if b["flops"] is None else b["flops"] / 1e6,
            "–" if b["params"] is None else b["params"] / 1e6,
            label,
            share["n"],
            f"{share['beats_pct']:.1f}%",
            f"{share['beats_pct_normalized']:.1f}%",
            "yes" if share["identity_checked"] else "not checked",
        ]
        for name, b in summary.get("baselines", {}).items()
        for label, share in b["populations"].items()
    ]
    if not rows:
        return ""
    header = ["baseline", "top-1 error", "flops (M)", "params (M)", "population", "n", "beats", "beats (normalized)"]
    return (
        "<h2>Baselines</h2><p>The share of each population's models a baseline beats (their error above "
        "its own); same data, schedule and stem checked from the sweeps' identities.</p>"
        + _table("baselines", [*header, "same training"], rows)
    )


NOT_RECORDED = "not recorded"


def _distinct(population: Population, column: str, key: str | None = None) -> list[str]:
    """The distinct values of a table column (of one key of its dict cells), as text."""
    if column not in population.table:
        return []
    seen: list[str] = []
    for cell in population.table[column]:
        if isinstance(cell, str) and key is not None and cell.startswith("{"):
            cell = json.loads(cell)  # a dict column read from population.csv
        if key is not None:
            cell = cell.get(key) if isinstance(cell, dict) else None
        if cell is None or (isinstance(cell, float) and cell != cell):  # missing, NaN
            continue
        text = str(int(cell)) if isinstance(cell, float) and cell.is_integer() else str(cell)
        if text not in seen:
            seen.append(text)
    return seen


def _header(populations: list[Population]) -> str:
    """What was trained and how, read from the populations' records or tables: data set,
    resolution, schedule, epochs, sweep seed, netspaces version, git commit, when, the command
    lines; a warning for every population too small for the statistics below."""
    rows, commands, small = [], [], []
    for p in populations:
        finished = sorted(_distinct(p, "finished_at"))
        commits = [c[:12] + ("+dirty" if c.endswith("+dirty") else "") for c in _distinct(p, "git_commit")]
        rows.append(
            [
                p.label,
                len(p.errors),
                *(
                    ", ".join(values) or NOT_RECORDED
                    for values in (
                        _distinct(p, "data"),
                        _distinct(p, "trained", "resolution"),
                        _distinct(p, "schedule"),
                        _distinct(p, "epochs_planned"),
                        _distinct(p, "sweep_seed"),
                        _distinct(p, "versions", "netspaces"),
                        commits,
                    )
                ),
                f"{finished[0]} to {finished[-1]}" if len(finished) > 1 else (finished or [NOT_RECORDED])[0],
            ]
        )
        commands += [(p.label, c) for c in _distinct(p, "command")] or [(p.label, NOT_RECORDED)]
        if len(p.errors) < MIN_N_VALIDATED:
            small.append(f"{p.label}: n={len(p.errors)} models, fewer than {MIN_N_VALIDATED}")
    header = ["population", "n", "data set", "resolution (px)", "schedule", "epochs", "sweep seed"]
    made = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return (
        "<h2>What was trained</h2>"
        + _table("header", [*header, "netspaces", "git commit", "trained (UTC)"], rows)
        + '<ul id="commands">'
        + "".join(f"<li>{html.escape(label)}: <code>{html.escape(c)}</code></li>" for label, c in commands)
        + "</ul>"
        + (
            '<ul class="warnings" id="small-n">'
            + "".join(
                f"<li>{html.escape(w)}: the confidence intervals, tests and fits below rest on too few models</li>"
                for w in small
            )
            + "</ul>"
            if small
            else ""
        )
        + f'<p id="made">Report made {made}.</p>'
    )


def build_html(
    analysis: Analysis,
    plots: dict[str, bytes],
    title: str = "netspaces analysis",
    sources: dict[str, str] | None = None,
    populations: list[Population] | None = None,
) -> str:
    """The report page; `sources` maps each label to the INPUT it was read from; `populations`
    (their tables) give the header of what was trained."""
    s = analysis.summary
    sources = sources or {}
    summary_rows = [
        [label, p["n"], p["min"], p["mean"], p["median"], p["excluded"], sources.get(label, "")]
        for label, p in s["populations"].items()
    ]
    ks_rows = [[pair, k["plain"], k["normalized"], k["p_value"], k["p_method"]] for pair, k in s["ks"].items()]
    ci_rows = [
        [
            label,
            p["median"],
            ci_text(p["median_ci"], 4),
            f"p{100 * p['low_quantile_ci']['quantile']:g}",
            p["low_quantile_ci"]["estimate"],
            ci_text(p["low_quantile_ci"], 4),
        ]
        for label, p in s["populations"].items()
        if "median_ci" in p
    ]
    pair_rows = [
        [
            pair,
            ci_text(k["ks_ci"], 3),
            k["normalized_p_value"],
            k["median_diff_ci"]["estimate"],
            ci_text(k["median_diff_ci"], 4),
            k["prob_a_better"]["estimate"],
            ci_text(k["prob_a_better"], 3),
            k["power"]["achieved_at_n"],
            "–" if k["power"]["models_needed"] is None else k["power"]["models_needed"],
        ]
        for pair, k in s["ks"].items()
        if "ks_ci" in k
    ]
    noise_rows = [
        [
            label,
            p["seed_noise"]["seed_sigma"],
            p["seed_noise"]["models"],
            p["seed_noise"]["seeds_per_model"],
            p["seed_noise"]["population_sigma"],
        ]
        for label, p in s["populations"].items()
        if "seed_noise" in p
    ]
    boot_rows = [
        [label, param, r["lo"], r["median"], r["hi"]]
        for label, params in s["bootstrap"].items()
        for param, r in params.items()
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        _header(populations) if populations else "",
        "<h2>Populations</h2>",
        _table(
            "summary",
            ["population", "n", "min error", "mean error", "median error", "excluded", "source"],
            summary_rows,
        ),
        "<h2>Kolmogorov–Smirnov tests</h2>",
        _table("ks", ["pair", "D (plain)", "D (normalized)", "p-value (plain)", "p-value method"], ks_rows)
        if ks_rows
        else "<p>One population: nothing to compare.</p>",
        "<h2>How sure we are</h2>",
        "<p>95% confidence intervals (methods and their validated coverage: docs/statistics.md).</p>",
        _table(
            "confidence",
            ["population", "median error", "median 95% CI", "quantile", "error there", "95% CI"],
            ci_rows,
        ),
        _table(
            "pairs",
            [
                "pair",
                "D 95% CI",
                "normalized p (permutation)",
                "median diff",
                "median diff 95% CI",
                "P(first better)",
                "95% CI",
                f"power at n (alpha {_alpha(s)})",
                "models per space needed",
            ],
            pair_rows,
        )
        if pair_rows
        else "",
        _table(
            "seed_noise",
            ["population", "seed noise σ", "replicated models", "seeds per model", "population σ"],
            noise_rows,
        )
        if noise_rows
        else "",
        _baselines_table(s),
        "<h2>Bootstrap good ranges of the best model's parameters</h2>",
        _table("bootstrap", ["population", "parameter", "2.5%", "median", "97.5%"], boot_rows)
        if boot_rows
        else "<p>No design-parameter columns.</p>",
    ]
    if analysis.warnings:
        parts.append(
            '<h2>Warnings</h2><ul class="warnings">'
            + "".join(f"<li>{html.escape(w)}</li>" for w in analysis.warnings)
            + "</ul>"
        )
    if analysis.notes:
        parts.append(
            '<h2>Notes</h2><ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in analysis.notes) + "</ul>"
        )
    parts.append("<h2>Plots</h2>")
    parts.extend(_figure(name, png) for name, png in plots.items())
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_outputs(out_dir: Path, analysis: Analysis, plots: dict[str, bytes], html_text: str) -> list[Path]:
    """Write summary.json, edf.csv, the plots and report.html into `out_dir`, all or none:
    every file is written to a temporary name first and renamed only once all were written
    (a full disk leaves the folder as it was). Returns the paths."""
    files: dict[str, bytes] = {
        "summary.json": (json.dumps(analysis.summary, indent=2) + "\n").encode(),
        "edf.csv": analysis.edf_table.to_csv(index=False).encode(),
        **plots,
        "report.html": html_text.encode(),
    }
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with ExitStack() as stack:
            for name, data in files.items():
                stack.enter_context(atomic_target(out_dir / name)).write_bytes(data)
    except BaseException:
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    return [out_dir / name for name in files]
