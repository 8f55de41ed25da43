"""A plain clone passes its tests, with nothing beside it (issue 27).

The repository's files (what `git clone` gives: tracked files, plus files not yet committed that git
would not ignore, so that the test holds for the working tree under review) are copied into an empty
folder, without ../shared beside them and with Debian's PostgreSQL 15, PgBouncer and hypopg pointed at
nothing. There the whole suite must collect without an error, and the tests that need what is missing
must skip, each with one line naming what to install, while the project's own attack cases run.
Under CI=true the same tests fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PACKAGES = ("server", "tools", "prompts", "agents", "specs")
NEEDS_MORE = ["tests/test_corpus_smoke.py", "tests/test_corpus_expectations.py", "tests/test_spec_write_safety.py",
              "tests/test_neon_tls.py", "tests/test_explain_hypopg.py", "tests/test_explain_indexes_pg15.py",
              "tests/test_scoped_query_attacks.py"]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> tuple[Path, dict]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout of the project")
    root = tmp_path_factory.mktemp("plain") / "schema-architect"  # nothing beside it: no ../shared
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    assert not (root.parent / "shared").exists()
    # The clone's own code, not an installed copy: the package made of its folders, first on the path.
    shim = root.parent / "shim" / "schema_architect"
    shim.mkdir(parents=True)
    for package in PACKAGES:
        (shim / package).symlink_to(root / package, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "SCHEMA_ARCHITECT_TEST_ADMIN_URL", "PYTEST_ADDOPTS",
                                                           "SCHEMA_ARCHITECT_CORPUS")}
    env |= {"PYTHONPATH": str(shim.parent), "SCHEMA_ARCHITECT_PG15_BIN": str(root / "no-pg15"),
            "SCHEMA_ARCHITECT_PGBOUNCER": str(root / "no-pgbouncer"),
            "SCHEMA_ARCHITECT_HYPOPG_CONTROL": str(root / "no-hypopg.control")}
    return root, env


def pytest_in(root: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900)


def test_the_whole_suite_collects_on_a_plain_clone(clone) -> None:
    root, env = clone
    done = pytest_in(root, env, "--collect-only", "-q")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "error" not in done.stdout.splitlines()[-1], done.stdout[-2000:]
    imported = subprocess.run([sys.executable, "-c", "import schema_architect.tools as t; print(t.__file__)"],
                              cwd=root, env=env, capture_output=True, text=True, check=True).stdout
    assert imported.startswith(str(root.parent / "shim")), imported


def test_what_needs_more_skips_with_a_reason_and_our_attack_cases_run(clone) -> None:
    root, env = clone
    done = pytest_in(root, env, "-q", "-rA", *NEEDS_MORE)
    report = done.stdout
    assert done.returncode == 0, report[-4000:] + done.stderr[-2000:]
    summary = report.splitlines()[-1]
    assert "failed" not in summary and "error" not in summary and "passed" in summary, summary
    skips = [line for line in report.splitlines() if line.startswith("SKIPPED")]
    reasons = "\n".join(skips)
    assert "../shared" in reasons and "corpus" in reasons, reasons
    assert "install with: apt-get" in reasons and "pgbouncer" in reasons and "hypopg" in reasons, reasons
    # the project's own attack cases ran on its own fixture
    for role in ("app_owner-True", "agent_ro-False"):
        assert f"PASSED tests/test_scoped_query_attacks.py::test_attack_suite[{role}]" in report, report[-3000:]


def test_under_ci_a_missing_dependency_fails(clone) -> None:
    root, env = clone
    done = pytest_in(root, {**env, "CI": "true"}, "-q", "tests/test_corpus_smoke.py", "tests/test_neon_tls.py")
    assert done.returncode == 1, done.stdout[-2000:]
    assert "required under CI=true" in done.stdout, done.stdout[-2000:]
