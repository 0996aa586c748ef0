"""Runs the browser smoke test (smoke.mjs: playwright-core driving Debian's
Chromium) against a real stack started for it."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "api"))
from conftest import StackFactory  # noqa: E402  (the API tests' stack helper)


@pytest.fixture
def stack():
    f = StackFactory("vdb-")
    yield f("browser").start()
    f.close()


def test_dashboard_shell_in_chromium(stack):
    if not (HERE / "node_modules" / "playwright-core").exists():
        pytest.fail("tests/browser/node_modules is missing: run scripts/setup")
    env = dict(os.environ, VALDOCK_URL=f"http://{stack.addr}")
    env.setdefault("VALDOCK_ARTIFACTS", str(stack.root))
    run = subprocess.run(["node", str(HERE / "smoke.mjs")], cwd=HERE, env=env,
                         capture_output=True, text=True, timeout=240)
    print(run.stdout[-4000:])
    print(run.stderr[-4000:], file=sys.stderr)
    assert run.returncode == 0, f"smoke.mjs failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
    assert run.stdout.strip().splitlines()[-1].endswith(" 0 failed")
