"""docs/ONBOARDING.md is true: its commands, run in order on a city the rest of the suite does not use (all of
Liechtenstein, with synthetic registers cut from its OSM data), do what the page says; run again, they change
nothing (every step is idempotent)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from scripts.cli import main

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "ONBOARDING.md"


def commands() -> list[list[str]]:
    """Every ``gridpatrol …`` line of the guide's shell blocks, in order (serving is left out: it does not end)."""
    blocks = re.findall(r"```sh\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)
    lines = [line for block in blocks for line in block.splitlines() if line.startswith("gridpatrol ")]
    return [shlex.split(line)[1:] for line in lines if not line.startswith("gridpatrol serve")]


def run_all(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    outputs: dict[str, str] = {}
    for argv in commands():
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 0, f"gridpatrol {shlex.join(argv)}: {err}"
        outputs[shlex.join(argv)] = out
    return outputs


def find(outputs: dict[str, str], start: str, *, dry: bool | None = None) -> str:
    for command, out in outputs.items():
        if command.startswith(start) and (dry is None or ("--dry-run" in command) == dry):
            return out
    raise AssertionError(f"no command {start!r} in the guide")


def test_the_onboarding_guide_runs_as_written_twice(fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").symlink_to(ROOT / "data")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    assert len(commands()) >= 10
    first = run_all(capsys)
    assert "code none (outside China)" in find(first, "city add")
    assert re.search(r"buildings\s+17,717\s+\(new 17,717", find(first, "import-osm"))
    units = find(first, "import-units", dry=False)
    assert re.search(r"stored [1-9]\d* new, 0 changed", units) and "tile their parents" in units
    assert "crosses a community border" in find(first, "import-grids", dry=True)
    grids = find(first, "import-grids", dry=False)
    assert re.search(r"stored [1-9][\d,]* new", grids) and "the grids tile their communities" in grids
    assert re.search(r"by point inside a building [1-9]", find(first, "import-households"))
    staff = find(first, "import-staff")
    assert re.search(r"[1-9][\d,]* new user\(s\)", staff) and "read as GBK" in staff
    assert (tmp_path / "example-city" / "setup-codes.tsv").stat().st_mode & 0o077 == 0
    assert re.search(r"\d+ grids proposed", find(first, "divide"))

    second = run_all(capsys)
    assert re.search(r"buildings\s+17,717\s+\(new 0, changed 0, removed 0\)", find(second, "import-osm"))
    assert "stored 0 new, 0 changed" in find(second, "import-units", dry=False)
    assert re.search(r"stored 0 new, 0 changed, [\d,]+ unchanged, 0 retired", find(second, "import-grids", dry=False))
    assert re.search(r"\(0 new, [\d,]+ updated\).*0 new user\(s\)", find(second, "import-staff"))
    engine = create_engine(fresh_url)
    with engine.connect() as conn:
        staff_count = conn.execute(text("SELECT count(*) FROM staff")).scalar()
        users = conn.execute(text("SELECT count(*) FROM users WHERE setup_code_hash IS NOT NULL")).scalar()
    engine.dispose()
    rows = (tmp_path / "example-city" / "staff.csv").read_bytes().decode("gbk").strip().splitlines()
    assert staff_count == len(rows) - 1 and users == sum(1 for r in rows[1:] if r.split(",")[5])
