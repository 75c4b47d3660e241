"""``ablate train|flops|report|predict``: single runs and reading them back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ablate.cli.choices import Correction, Format, Reader, Split
from ablate.cli.common import (
    ProfileOpt,
    QuietOpt,
    SetOpt,
    StoreFlags,
    app,
    browse_hint,
    clean_errors,
    store_options,
)
from ablate.errors import AblateError


@app.command("train")
@clean_errors
@store_options()
def train_cmd(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC")],
    set_: SetOpt = None,
    profile: ProfileOpt = None,
    quiet: QuietOpt = False,
    *,
    flags: StoreFlags,
) -> None:
    """Train SPEC once with no sampling (a baseline), tracked like a trial."""
    from ablate.runs.single import train_spec
    from ablate.spec import load_spec

    stores = flags.resolve()
    spec = load_spec(spec_path, set_, profile)
    result = train_spec(spec, stores, progress=not quiet, echo=typer.echo)
    config = spec.resolve({})
    shown = {f"{split}_{k}": round(v, 5) for split in ("val", "test")
             for k, v in result.metrics.get(split, {}).items() if "_" not in k}
    typer.echo(json.dumps(shown, indent=None))
    typer.echo(f"run {result.run_id}: {config.objective.metric}={result.objective:.4f}, "
               f"{result.gflops:.3f} GFLOPs, {result.params:,} params")
    typer.echo(browse_hint(stores))


@app.command("flops")
@clean_errors
def flops_cmd(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC")],
    set_: SetOpt = None,
    profile: ProfileOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Params and GFLOPs of the configured model at its input size (fvcore)."""
    from ablate.spec import load_spec
    from ablate.tracking.names import FLOP_CONVENTION
    from ablate.training.flops import model_cost
    from ablate.training.models import check_models

    spec = load_spec(spec_path, set_, profile)
    check_models(spec)
    config = spec.resolve({})
    cost = model_cost(config)
    if as_json:
        typer.echo(json.dumps({**cost, "convention": FLOP_CONVENTION}))
        return
    c, h, w = cost["input"]
    typer.echo(
        f"{config.model.arch}/{config.model.encoder} at {c}x{h}x{w}: "
        f"{cost['params']:,} params, {cost['gflops']:.3f} GFLOPs ({FLOP_CONVENTION})"
    )


# ------------------------------------------------------------------------------ reading back


# The report's options, declared once here so that the command's signature stays short.
ReportOut = Annotated[
    Path | None,
    typer.Option(help="Write the report here (figures and CSV tables go next to it)."),
]
ReportFormat = Annotated[
    Format, typer.Option("--format", help="csv: one file per table; html: one "
                                           "self-contained file, figures embedded.")
]
CompareOpt = Annotated[
    str | None, typer.Option(help="Another study to set side by side (same store).")
]
TrialsOpt = Annotated[
    str | None,
    typer.Option(help="Trial numbers for the per-split tables, e.g. 3,5 "
                      "(default: the best configuration and the baseline)."),
]
ReaderOpt = Annotated[
    Reader,
    typer.Option(help="auto: SQL tables of a database store, else search_runs; "
                      "mlflow: MlflowClient.search_runs; sql."),
]
AlphaOpt = Annotated[
    float | None, typer.Option(help="Level of the decisions (default: the spec's "
                                    "report.alpha, 0.05).")
]
CorrectionOpt = Annotated[
    Correction | None, typer.Option(help="Multiple-comparison correction (default: the "
                                         "spec's report.correction, holm).")
]
MarginOpt = Annotated[
    float | None, typer.Option(help="Call a difference within ±margin equivalent (TOST).")
]
EffectOpt = Annotated[
    float | None, typer.Option(help="Difference the 'seeds needed' figure is for "
                                    "(default: the observed one).")
]


@app.command("report")
@clean_errors
@store_options(storage_help="Optuna storage URL (env ABLATE_STORAGE); accepted like study "
                            "run's, checked, not read: the report reads MLflow.")
def report_cmd(
    name: str,
    out: ReportOut = None,
    fmt: ReportFormat = Format.md,
    compare: CompareOpt = None,
    trials: TrialsOpt = None,
    reader: ReaderOpt = Reader.auto,
    alpha: AlphaOpt = None,
    correction: CorrectionOpt = None,
    equivalence_margin: MarginOpt = None,
    target_effect: EffectOpt = None,
    *,
    flags: StoreFlags,
) -> None:
    """Report of a study read from MLflow: markdown (default), CSV, LaTeX, JSON or HTML.

    Without --out the text goes to stdout and no figures are written; with --out the PNG
    figures are written next to the file (<stem>_pareto.png, ...) and linked from it. HTML is
    one file with its figures embedded (base64 PNG), with or without --out. The decision
    settings default to the spec's report section as the study recorded it."""
    from ablate.reporting.drawing import Drawer, start_drawer

    chosen = _trial_numbers(trials)
    # figures: a helper process imports matplotlib and draws while this one reads the runs
    figures = fmt == Format.html or (out is not None and fmt in (Format.md, Format.latex))
    with start_drawer() if figures else Drawer() as drawer:
        from ablate.reporting import write_report

        stores = flags.resolve()  # --storage: checked, not read
        overrides = {"alpha": alpha,
                     "correction": None if correction is None else str(correction),
                     "equivalence_margin": equivalence_margin, "target_effect": target_effect}
        text, written = write_report(stores, name, out=out, fmt=str(fmt), compare=compare,
                                     trials=chosen, reader=str(reader), overrides=overrides,
                                     drawer=drawer)
    if out is None:
        typer.echo(text)
        return
    typer.echo(f"report written to {out}")
    for path in written[1:]:
        typer.echo(f"  {path}")


@app.command("predict")
@clean_errors
@store_options(storage=False)
def predict_cmd(
    target: Annotated[str, typer.Argument(metavar="RUN_OR_STUDY",
                                          help="An MLflow run id, or a study (its best run).")],
    out: Annotated[Path, typer.Option(help="Folder for labels/ and color/ PNGs.")],
    split: Annotated[Split, typer.Option(help="The split to predict.")] = Split.test,
    *,
    flags: StoreFlags,
) -> None:
    """Write a run's predictions as label PNGs (original size) and colourised copies, and
    print the metrics computed from those files."""
    from ablate.runs.predict import predict_run
    from ablate.tracking import Tracker

    tracker = Tracker(flags.resolve(), write=False)
    result = predict_run(tracker, target, str(split), out)
    key = "miou" if "miou" in result.metrics else "iou"
    typer.echo(f"run {result.run_id}: wrote {result.files} label maps to {out / 'labels'} "
               f"and colourised copies to {out / 'color'}")
    line = f"{split} {key} from the written files: {result.metrics[key]:.6f}"
    logged = result.logged.get(f"{split}_{key}")
    if logged is not None:
        line += f" (logged {split}_{key}: {logged:.6f})"
    typer.echo(line)


def _trial_numbers(trials: str | None) -> list[int] | None:
    """``--trials 3,5`` as numbers (None: not given)."""
    if not trials:
        return None
    try:
        return [int(t) for t in trials.replace(" ", "").split(",") if t]
    except ValueError:
        raise AblateError(f"--trials: expected trial numbers like 3,5, not '{trials}'") from None
