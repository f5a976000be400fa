"""Write sessions/demo: exactly the text files ``tunedeck demo`` creates (engine.demo.campaign.write_demo_files).

Run from the repository root after changing the demo (tests/test_tiny_sessions.py checks they agree):

    .venv/bin/python sessions/demo/tools/make_demo.py
"""

from __future__ import annotations

from pathlib import Path

from engine.demo.campaign import write_demo_files

SESSION = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    for path in write_demo_files(SESSION):
        print(path.relative_to(SESSION))
