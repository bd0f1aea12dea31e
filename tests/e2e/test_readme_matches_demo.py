"""The README against the Makefile and against what `make demo` really gives.

A newcomer follows the README to the letter: its quick start must be the Makefile's targets, its
"Where the outputs are" table must name files the demo writes, and its figures (the monthly PDF's
page count) must be what a run gives now. The demo runs here as `make demo` runs it (the same two
modules, in a subprocess, in a throw-away project home), on a small data set.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

from crm_kpis.paths import PROJECT_DIR

README = (PROJECT_DIR / "README.md").read_text()
MAKEFILE = (PROJECT_DIR / "Makefile").read_text()


def section(title: str) -> str:
    """The README's text from a heading to the next heading of any level."""
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ )", README, re.M | re.S)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", MAKEFILE, re.M))


def test_the_quick_start_is_two_make_targets():
    block = re.search(r"```bash\n(.*?)```", section("Quick start: two commands"), re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    assert {"demo", "test"} <= makefile_targets()
    # the demo is the data, then the pipeline; the tests check what they need first
    assert re.search(r"^demo: .*\bdata\b.*\bpipeline\b", MAKEFILE, re.M)
    assert re.search(r"^test: prereqs-test\b", MAKEFILE, re.M)


def test_every_make_command_in_the_readme_exists_with_its_variables():
    code = "\n".join(re.findall(r"```\w*\n(.*?)```", README, re.S) + re.findall(r"`([^`\n]+)`", README))
    used = re.findall(r"\bmake ([a-z][\w-]*)((?: [A-Z_]+=\S+)*)", code)
    assert len(used) >= 8
    targets = makefile_targets()
    for target, assignments in used:
        assert target in targets, f"README says `make {target}`, which the Makefile does not have"
        for name in re.findall(r"([A-Z_]+)=", assignments):
            assert f"$({name})" in MAKEFILE, f"README passes {name}= to make {target}; the Makefile never reads it"


def test_the_demo_prints_its_runs_and_outputs_and_nothing_else(demo):
    home, printed = demo
    lines = printed.splitlines()
    assert not [line for line in lines if re.search(r"warn|deprecat|traceback|error", line, re.I)], printed
    assert lines[-1].startswith("finished ")
    outputs = lines[lines.index("Outputs:") + 1:-1]
    # the reports (daily, monthly and its variants' editions), their emails, KPI alerts if any fired
    kinds = [line.split()[0] for line in outputs]
    assert set(kinds) <= {"report", "email", "alert", "history", "logs"} and kinds[-2:] == ["history", "logs"], kinds
    assert kinds.count("report") == 1 + 1 + 2 and kinds.count("email") == 1 + 1 + 2, kinds
    for line in outputs:
        assert Path(line.split()[1]).exists(), line


def test_every_output_path_in_the_readme_is_written_by_the_demo(demo):
    home, _ = demo
    rows = [row for row in section("Where the outputs are").splitlines() if row.startswith("| ") and "`" in row]
    assert len(rows) >= 6
    for row in rows:
        where = row.split("|")[2]
        tokens = re.findall(r"`([^`]+)`", where)
        base = next(t for t in tokens if t.startswith("var/"))
        paths = [base] + [re.sub(r"\.[\w.]+$", "", base) + t for t in tokens if t.startswith(".")]
        for path in paths:
            pattern = re.sub(r"<[^>]+>", "*", path.removeprefix("var/"))
            assert list(home.glob(pattern)), f"README row {row.strip()!r}: nothing at {pattern} after the demo"
        if base.endswith(".db"):  # tables named in the row exist in that database
            tables = [t for t in tokens if re.fullmatch(r"[a-z_]+", t)]
            with sqlite3.connect(home / base.removeprefix("var/")) as db:
                present = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
            assert set(tables) <= present, f"README names tables {set(tables) - present} that {base} does not have"


def test_the_readmes_page_count_is_the_monthly_pdfs(demo):
    home, _ = demo
    (claimed,) = re.findall(r"monthly PDF is about\s+\d+ KB \((\d+) pages\)", README)
    info = subprocess.run(["pdfinfo", str(home / "reports/monthly_executive/2026-10.pdf")], capture_output=True,
                          text=True, check=True).stdout
    assert int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1)) == int(claimed)
    assert re.search(r"^Tagged:\s+yes", info, re.M), info  # PDF/UA-1, as the README says
    # no near-empty page (a page that held two lines was a complaint): every page is at least a third full
    pages = int(claimed)
    for page in range(1, pages + 1):
        text = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), "-layout",
                               str(home / "reports/monthly_executive/2026-10.pdf"), "-"],
                              capture_output=True, text=True, check=True).stdout
        assert len([line for line in text.splitlines() if line.strip()]) >= 15, f"page {page} is near-empty"
