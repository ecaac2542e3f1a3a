import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facedancer_torch", *args],
                          capture_output=True, text=True, timeout=120)


def test_version_and_help():
    out = _run("--version")
    assert out.returncode == 0
    assert re.fullmatch(r"facedancer-torch \d+\.\d+\.\d+\s*", out.stdout)
    assert _run("--help").returncode == 0


def test_ci_runs_the_readme_test_command():
    """.ci/run must run exactly the README's test command (DEVELOPERS.md)."""
    ci = (ROOT / ".ci" / "run").read_text()
    match = re.search(r"^TEST_COMMAND='(.+)'$", ci, re.M)
    assert match, ".ci/run must define TEST_COMMAND"
    assert match.group(1) in (ROOT / "README.md").read_text()
