"""`make findings`: regenerate every table and plot of docs/findings.md from the committed
population tables under docs/findings/ (no training, no checkpoint, no W&B).

Each generated block of docs/findings.md sits between `<!-- findings:NAME -->` and
`<!-- /findings:NAME -->`; the prose around the blocks is written by people and left alone.
Blocks: `scale` (the pre-declared scale study, protocols/scale_study.yaml) and `chain` (the
paper's design-space chain, protocols/chain.yaml).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from netspaces.analysis import stats  # noqa: E402
from netspaces.analysis.edf import ks_pvalue, ks_statistic  # noqa: E402
from netspaces.errors import UserError  # noqa: E402
from netspaces.protocol import load_protocol  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "findings.md"
TABLES = REPO / "docs" / "findings"
NAME = re.compile(r"^e(?P<epochs>\d+)-pc(?P<per_class>\d+)-s(?P<seed>\d+)-(?P<space>[a-z0-9_]+)\.csv$")
PLAN_NAME = "plan.json"  # in the chain's folder: its frozen setting and models per space


def study_tables(folder: Path) -> list[tuple[re.Match, Path]]:
    """The scale study's population tables in `folder`, each with its name's parts (epochs,
    per_class, seed, space), in name order."""
    return [(m, path) for path in sorted(folder.glob("*.csv")) if (m := NAME.match(path.name))]


def read_errors(path: Path) -> tuple[np.ndarray, int, float]:
    """(top-1 errors of the ok models, models in the table, core-seconds trained)."""
    import pandas as pd

    t = pd.read_csv(path)
    ok = t[t["status"] == "ok"]
    cpu = t["train_cpu_s"] if "train_cpu_s" in t else t["train_time_s"]  # older tables: wall time
    return ok["top1_err"].to_numpy(float), len(t), float(cpu.fillna(t["train_time_s"]).fillna(0).sum())


def compare(a: np.ndarray, b: np.ndarray, *, alpha: float, power: float) -> dict:
    """Everything a row of the scale table states about A against B."""
    p, method = ks_pvalue(a, b)
    return {
        "n": (len(a), len(b)),
        "median": (float(np.median(a)), float(np.median(b))),
        "ci": (stats.median_ci(a), stats.median_ci(b)),
        "diff": stats.median_diff_ci(a, b),
        "d": ks_statistic(a, b),
        "d_ci": stats.ks_ci(a, b),
        "p": p,
        "method": method,
        "better": stats.prob_a_better(a, b),
        "power": stats.power_at(a, b, min(len(a), len(b)), alpha=alpha),
        "needed": stats.models_needed(a, b, alpha=alpha, power=power),
    }


def scale_block(folder: Path, study) -> tuple[str, list[tuple[str, bytes]], dict[tuple[int, int], str]]:
    """The scale study's table (one line per row and seed, then each row's verdict), one EDF
    plot per row, and each row's status: decisive, not decisive, partial or not run."""
    a_space, b_space = study["spaces"]
    alpha, power = float(study["alpha"]), float(study["power_target"])
    found: dict[tuple[int, int], dict[int, dict[str, Path]]] = {}
    for m, path in study_tables(folder):
        key = (int(m["epochs"]), int(m["per_class"]))
        found.setdefault(key, {}).setdefault(int(m["seed"]), {})[m["space"]] = path
    head = (
        f"| epochs | images/class | seed | n ({a_space}, {b_space}) | {a_space} median | {b_space} median | "
        f"difference | KS D | exact p | P({a_space} beats {b_space}) | power at n | models for power "
        f"{power:g} | core-h |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines, verdicts, plots, statuses = [head], [], [], {}
    for row in study["grid"]:
        key = (int(row["epochs"]), int(row["per_class"]))
        seeds = found.get(key, {})
        complete = {s: f for s, f in seeds.items() if a_space in f and b_space in f}
        if not complete:
            verdicts.append(f"- {key[0]} epochs, {key[1]}/class: **not run** (no tables)")
            statuses[key] = "not run"
            continue
        decisive, curves = True, []
        for seed, files in sorted(complete.items()):
            (a, na, ta), (b, nb, tb) = read_errors(files[a_space]), read_errors(files[b_space])
            c = compare(a, b, alpha=alpha, power=power)
            curves.append((seed, a, b))
            decisive &= c["p"] < alpha and c["median"][0] < c["median"][1]
            need = c["needed"].models if c["needed"].models is not None else "n/a"
            lines.append(
                f"| {key[0]} | {key[1]} | {seed} | {len(a)}/{na}, {len(b)}/{nb} | "
                f"{c['median'][0]:.2f} {stats.ci_text(c['ci'][0], 2)} | {c['median'][1]:.2f} {stats.ci_text(c['ci'][1], 2)} | "
                f"{c['diff']['estimate']:+.2f} {stats.ci_text(c['diff'], 2)} | {c['d']:.3f} {stats.ci_text(c['d_ci'], 3)} | "
                f"{c['p']:.3g} | {c['better']['estimate']:.2f} {stats.ci_text(c['better'], 2)} | {c['power']:.2f} | "
                f"{need} | {(ta + tb) / 3600:.2f} |"
            )
        want = len(study["confirmatory_seeds"]) if key != _first(study) else None
        partial = want is not None and len(complete) < want
        word = "decisive" if decisive and not partial else "not decisive"
        statuses[key] = "partial" if partial else word
        tail = f" ({len(complete)} of {want} seeds so far)" if partial else ""
        verdicts.append(f"- {key[0]} epochs, {key[1]}/class: **{word}** at p < {alpha:g}{tail}")
        plots.append((f"edf-e{key[0]}-pc{key[1]}.png", _edf_png(curves, key, a_space, b_space)))
    return "\n".join(lines) + "\n\n" + "\n".join(verdicts), plots, statuses


def _first(study) -> tuple[int, int]:
    first = study["grid"][0]
    return int(first["epochs"]), int(first["per_class"])


def _edf_png(curves, key, a_space: str, b_space: str) -> bytes:
    styles = ["-", "--", ":", "-."]
    series = [
        (errors, colour, styles[i % 4], f"{label} s{seed}")
        for i, (seed, a, b) in enumerate(curves)
        for errors, colour, label in ((a, "C0", a_space), (b, "C3", b_space))
    ]
    return _edf_figure(series, f"{key[0]} epochs, {key[1]} images/class", (5, 3.4))


def step_verdict(claim: str, diff: dict, p: float, median_to: float, median_from: float) -> str:
    """protocols/chain.yaml's rules: no_loss by the CI of the median difference against +-1
    point; better by the exact KS p < 0.01 and the direction of the medians."""
    if claim == "no_loss":
        lo, hi = diff["lo"], diff["hi"]
        if lo is None or hi is None:
            return "inconclusive"
        return "agree" if -1 <= lo and hi <= 1 else "disagree" if hi < -1 or lo > 1 else "inconclusive"
    if p < 0.01:
        return "agree" if median_to < median_from else "disagree"
    return "inconclusive"


def chain_block(folder: Path, chain, setting: str) -> tuple[str, list[tuple[str, bytes]]]:
    """Each step of the chain: the paper's claim, what was measured, the declared verdict; then
    RegNetX's good ranges beside the paper's trends; one EDF plot of every population."""
    import pandas as pd

    from netspaces.analysis.bootstrap import good_range

    errors = {sp: read_errors(folder / f"{sp}.csv") for sp in chain["spaces"] if (folder / f"{sp}.csv").is_file()}
    if not errors:
        return f"Setting: {setting}; no population finished yet.", []
    core_h = sum(e[2] for e in errors.values()) / 3600
    lines = [
        f"Setting: {setting}; {len(errors)} of {len(chain['spaces'])} populations, {core_h:.2f} core-hours of training.",
        "",
        "| step | paper | claim | n | median from → to | difference (to − from) | KS D | exact p | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for step in chain["steps"]:
        a, b, claim = step["from"], step["to"], step["claim"].replace("_", " ")
        if a not in errors or b not in errors:
            lines.append(f"| {a} → {b} | {step['paper']} | {claim} | not run | | | | | |")
            continue
        (xa, na, _), (xb, nb, _) = errors[a], errors[b]
        diff = stats.median_diff_ci(xb, xa)
        p, _ = ks_pvalue(xa, xb)
        ma, mb = float(np.median(xa)), float(np.median(xb))
        lines.append(
            f"| {a} → {b} | {step['paper']} | {claim} | {len(xa)}/{na}, {len(xb)}/{nb} | "
            f"{ma:.2f} {stats.ci_text(stats.median_ci(xa), 2)} → {mb:.2f} {stats.ci_text(stats.median_ci(xb), 2)} | "
            f"{diff['estimate']:+.2f} {stats.ci_text(diff, 2)} | {ks_statistic(xa, xb):.3f} | "
            f"{p:.3g} | **{step_verdict(step['claim'], diff, p, mb, ma)}** |"
        )
    trends = []
    if (folder / "regnetx.csv").is_file():
        t = pd.read_csv(folder / "regnetx.csv")
        ok = t[t["status"] == "ok"]
        trends = ["", "| RegNetX parameter | good range (median) | paper |", "|---|---|---|"]
        for param, paper in chain["trends"].items():
            r = good_range(ok["top1_err"].to_numpy(float), ok[param].to_numpy(float))
            trends.append(f"| {param} | {r['lo']:.3g} – {r['hi']:.3g} ({r['median']:.3g}) | {paper} |")
    times = run_times(folder, key="space")
    png = _chain_png({sp: e[0] for sp, e in errors.items()})
    return "\n".join(lines + trends + ([f"\n{times}."] if times else [])), [("edf-chain.png", png)]


def setting_from(statuses: dict[tuple[int, int], str], capped: set[str], first: tuple[int, int]) -> tuple[int, int]:
    """The cheapest decisive row (epochs x images, ties: fewer images), as soon as no unfinished
    row could come before it; the base setting `first` once every row is finished and none is
    decisive. Rows left out by the study's cap count as finished."""
    cost = lambda key: (key[0] * key[1], key[1])  # noqa: E731
    open_rows = [
        key
        for key, status in statuses.items()
        if status == "partial" or (status == "not run" and f"e{key[0]}-pc{key[1]}" not in capped)
    ]
    decisive = [key for key, status in statuses.items() if status == "decisive"]
    best = min(decisive, key=cost) if decisive else None
    blocking = [key for key in open_rows if best is None or cost(key) < cost(best)]
    if blocking:
        names = ", ".join(f"e{e}-pc{c}" for e, c in sorted(blocking, key=cost))
        raise UserError(
            f"the scale study has unfinished rows ({names}) that decide the setting: run `make scale-study` first"
        )
    return best if best is not None else first


def _chain_png(errors: dict[str, np.ndarray]) -> bytes:
    series = [(e, f"C{i}", "-", space) for i, (space, e) in enumerate(errors.items())]
    return _edf_figure(series, "the chain: error EDFs", (5.5, 3.6))


def _edf_figure(series, title: str, size: tuple[float, float]) -> bytes:
    """Step EDFs, one per (errors, colour, line style, label), as PNG bytes without a version
    stamp, so a regenerated plot is byte-equal."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=100)
    for errors, colour, style, label in series:
        x = np.sort(errors)
        ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", color=colour, ls=style, label=label)
    ax.set_xlabel("top-1 error (%)")
    ax.set_ylabel("cumulative prob.")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def chain_setting(study, statuses) -> tuple[int, int]:
    """The chain rule's (epochs, images per class) from the study's row statuses; UserError while
    the finished rows do not decide it (rows the cap left out, in not_run.json, count as finished)."""
    import json

    folder = TABLES / "scale"
    capped = set(json.loads((folder / "not_run.json").read_text())) if (folder / "not_run.json").is_file() else set()
    first = study["grid"][0]
    return setting_from(statuses, capped, (int(first["epochs"]), int(first["per_class"])))


def chain_plan(folder: Path, chain) -> dict | None:
    """The chain's frozen plan (folder/plan.json, written by its first training run), or None
    before it started; UserError when it belongs to another version of the chain protocol."""
    from netspaces.record import read_json_object

    path = folder / PLAN_NAME
    plan = read_json_object(path) if path.is_file() else None
    if path.is_file() and plan is None:
        raise UserError(f"{path} is not a JSON object; restore it from git (it fixes the chain's populations)")
    if plan is not None and plan.get("protocol") != chain.hash:
        raise UserError(
            f"{path} was made under chain protocol {plan.get('protocol')}, not {chain.hash}; "
            "a new protocol version starts a new chain: move the old plan and tables away"
        )
    return plan


def chain_setting_text(study, statuses, chain) -> str:
    plan = chain_plan(TABLES / "chain", chain)
    if plan is not None:
        return (
            f"{plan['epochs']} epochs, {plan['per_class']} images per class, {plan['models_per_space']} models "
            f"per space (frozen on {plan['frozen_at']} by the first training run)"
        )
    try:
        epochs, per_class = chain_setting(study, statuses)
    except UserError as e:
        return f"not decided ({e})"
    return f"{epochs} epochs, {per_class} images per class (the rule's choice from the scale study)"


def replace_block(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- findings:{name} -->", f"<!-- /findings:{name} -->"
    if begin not in text or end not in text:
        raise SystemExit(f"{DOC} lacks the markers {begin} ... {end}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def run_times(folder: Path, key: str = "row") -> str:
    """Wall time of the sweeps per `key` (the study's rows, the chain's spaces), from the ledger
    scale_study.py and chain.py append to."""
    from populations import read_ledger

    entries = read_ledger(folder)
    if not entries:
        return ""
    rows: dict[str, float] = {}
    cut = idle = 0
    for entry in entries:
        if "wall_s" not in entry:  # the line an invocation writes when it starts
            continue
        if entry.get("models") == 0 and not entry.get("cut"):  # a re-run that found every model finished
            idle += 1
            continue
        rows[entry[key]] = rows.get(entry[key], 0.0) + float(entry["wall_s"])
        cut += bool(entry.get("cut"))
    notes = [f"{cut} invocation{'s' * (cut > 1)} cut by a stop, counted to the last finished model"] * bool(cut)
    notes += [f"{idle} re-run{'s' * (idle > 1)} that finished no model not counted"] * bool(idle)
    return (
        "Wall time of the sweeps (2 one-thread jobs): "
        + ", ".join(f"{r} {s / 60:.0f} min" for r, s in rows.items())
        + (f" ({'; '.join(notes)})" if notes else "")
    )


def rank_agreement(folder: Path) -> str:
    """How much scale reorders the same models: the sweep seed fixes the draw, so a seed's
    population holds the same architectures in every row; Spearman's correlation of their errors
    between every two rows, per seed and space."""
    import itertools

    import pandas as pd

    tables: dict[tuple[int, str], dict[str, pd.Series]] = {}
    for m, path in study_tables(folder):
        t = pd.read_csv(path).set_index("name")
        key = (int(m["seed"]), m["space"])
        tables.setdefault(key, {})[f"e{m['epochs']}-pc{m['per_class']}"] = t["top1_err"][t["status"] == "ok"]
    rhos = [
        a.corr(b.reindex(a.index), method="spearman")
        for rows in tables.values()
        for a, b in itertools.combinations(rows.values(), 2)
    ]
    rhos = [r for r in rhos if np.isfinite(r)]
    if not rhos:
        return ""
    return (
        f"A seed's populations hold the same architectures in every row; Spearman's correlation of "
        f"their errors between two rows: {min(rhos):.2f} to {max(rhos):.2f} (median {np.median(rhos):.2f}, "
        f"{len(rhos)} pairs of rows)"
    )


def main(argv: list[str] | None = None) -> int:
    study = load_protocol("scale_study")
    base = load_protocol(study["base"])
    body, plots, statuses = scale_block(TABLES / "scale", study)
    notes = [line for line in (rank_agreement(TABLES / "scale"), run_times(TABLES / "scale")) if line]
    body = f"Protocol {study.label}, over {base.label}.\n\n{body}" + "".join(f"\n\n{line}." for line in notes)
    for name, png in plots:
        (TABLES / "scale" / name).write_bytes(png)
    images = "\n".join(f"![{n}](findings/scale/{n})" for n, _ in plots)
    text = replace_block(DOC.read_text(), "scale", f"{body}\n\n{images}" if images else body)
    chain = load_protocol("chain")
    chain_body, chain_plots = chain_block(TABLES / "chain", chain, chain_setting_text(study, statuses, chain))
    for name, png in chain_plots:
        (TABLES / "chain" / name).write_bytes(png)
    chain_images = "\n".join(f"![{n}](findings/chain/{n})" for n, _ in chain_plots)
    chain_body = f"Protocol {chain.label}, over {load_protocol(chain['base']).label}.\n\n{chain_body}"
    text = replace_block(text, "chain", f"{chain_body}\n\n{chain_images}" if chain_images else chain_body)
    DOC.write_text(text)
    print(f"{DOC.relative_to(REPO)}: scale study ({len(plots)} rows with data), chain ({len(chain_plots)} plot)")
    return 0


def _main(argv: list[str]) -> int:
    try:
        return main(argv)
    except UserError as e:
        print(f"findings: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
