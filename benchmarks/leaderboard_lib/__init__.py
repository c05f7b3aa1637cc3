"""The pieces of ``benchmarks/leaderboard.py``, importable by tests.

* :mod:`.registry` — the policy names a suite may use (``"hint"``, ``"ddpm_no_gains"``,
  ...) and how each is trained and evaluated;
* :mod:`.suite` — suite files (TOML): loading, validation, expansion into runs and jobs;
* :mod:`.runs` — one job (train once, evaluate every run that shares the trained policy),
  the cached demonstration files and the atomic JSON records;
* :mod:`.backends` — where jobs execute: this process, a local process pool, or Ray;
* :mod:`.report` — the Markdown leaderboard and the Fig. 5 / Fig. 6 style plots.

The script imports this package as ``leaderboard_lib`` (``benchmarks/`` is the script's
directory, so it is on ``sys.path``). Only relative imports are used inside, so the
package works under that name and as ``benchmarks.leaderboard_lib``.
"""

from __future__ import annotations
