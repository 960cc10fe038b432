"""``modlens report DIR``: bad input is one clear line and exit code 2."""

import pytest

from modlens.cli import main
from modlens.store import Store


def test_missing_dir(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("modlens report: error:") and "not a directory" in err and "\n" not in err


def test_not_a_study_store(tmp_path, capsys):
    Store.open(tmp_path / "s", kind="sweep", config={})
    assert main(["report", str(tmp_path / "s")]) == 2
    assert "not a study" in capsys.readouterr().err


def test_bad_n_perm(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--n-perm", "0"]) == 2
    assert "--n-perm must be positive" in capsys.readouterr().err


def test_rebuilds_report(tmp_path, capsys):
    from modlens.analysis import synthetic_study_frame

    store = Store.open(tmp_path / "study", kind="study", config={"preset": "t"})
    frame = synthetic_study_frame({"mask_iou_excess": (1.0, 0.05)}, seeds=(0, 1, 2))
    for unit, part in frame.groupby("unit"):
        store.write(str(unit), [{"table": "metrics", **r} for r in part.to_dict("records")], meta={})
    out = tmp_path / "elsewhere" / "r.html"
    assert main(["report", str(tmp_path / "study"), "--html", str(out), "--no-static", "--n-perm", "99"]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and f"wrote {out}" in printed
    # the answer, as the study prints it: the question, the primary sentences, then the primary table
    assert "How much does pretraining quality affect the modularity of fine-tuned models?" in printed
    assert "\n- Of the 3 primary metrics, 0 are established" in printed
    assert "Holm-adjusted p" in printed and "not measured in this study" in printed


@pytest.mark.parametrize("argv", [["report"], ["report", "a", "b"]])
def test_usage_errors(argv):
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2
