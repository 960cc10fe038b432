"""``modlens study``: the main job. Does pretraining quality change the modularity of fine-tuned models?"""

import argparse
import dataclasses
import time
from pathlib import Path

from modlens.config import load_config
from modlens.errors import ConfigError
from modlens.study import PRESETS, StudyConfig, load_family_file, run_study


def run(args: argparse.Namespace) -> int:
    config = load_config(StudyConfig, path=args.config, base=PRESETS[args.preset])
    family = load_family_file(args.family) if args.family else None
    if family is not None:  # preset, --config, the family file's [study] and heldout, then --set
        config = family.study_config(config)
        family = dataclasses.replace(family, study={}, heldout=())
    config = load_config(StudyConfig, overrides=args.overrides, base=config)
    if args.plan:
        if family is None:
            raise ConfigError("--plan states the costs of a family file's study; give --family FILE.toml")
        from modlens.study.family_file import check_family
        from modlens.study.plan import plan_study

        print(plan_study(config, check_family(family, config)).text())
        return 0
    out = Path(args.out or (f"results/{Path(args.family).stem}" if args.family else f"results/{args.preset}"))
    started = time.perf_counter()
    result = run_study(
        config,
        out,
        family=family,
        executor=args.executor,
        resume=args.resume,
        replace=args.replace,
        progress=not args.no_progress,
    )
    elapsed = time.perf_counter() - started
    for name, table in (
        ("metrics", result.metrics),
        ("quality", result.quality),
        ("drift_layers", result.drift_layers),
        ("mask_layers", result.mask_layers),
    ):
        table.to_csv(out / f"{name}.csv", index=False)
    from modlens.cli.report import answer_text, methods_text
    from modlens.report import write_study_report

    files = write_study_report(out)
    print(
        f"study {(family.study_config(config) if family else config).fingerprint()} in {out} ({elapsed:.0f} s this run)"
    )
    print(answer_text(files.answer))
    if files.methods is not None:
        print(methods_text(files.methods))
    print(f"descriptive metrics, figures and tables: {files.html}")
    if files.skipped:
        print(files.skipped)
    return 0
