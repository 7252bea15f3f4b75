"""`dealscout leader` as a child process for drills, its marketplace hosts pointed at local fakes.

    DEALSCOUT_DRILL_RESOLVE='{"www.ebay.com": "http://127.0.0.1:PORT"}'   # marketplace host -> fake base URL
    DEALSCOUT_DRILL_BUDGETS='{"ebay": 24.5}'                              # requests a minute, per marketplace
    python -m tests.drills.leader_process

Settings come from the environment as the leader's own (a .env file is ignored, so real tokens never reach a drill).
DEALSCOUT_DRILL_BUDGETS gives marketplaces another request budget in this process alone: a drill that compresses
minutes into seconds raises the budgets by as much as it shortens the intervals, and every process of the drill
(leaders and workers alike) is given the same numbers, which the drill then holds the fake hosts' traffic to.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from dealscout.app import run_leader
from dealscout.cli import configure_logging
from scout.config import Settings, load_settings
from scout.errors import ConfigError, DealScoutError
from scrapers.registry import build_adapters
from tests.drills.service_process import RESOLVE_ENV

BUDGETS_ENV = "DEALSCOUT_DRILL_BUDGETS"


def apply_budgets(settings: Settings) -> dict[str, float]:
    """Set each named marketplace's request budget (requests a minute) on its adapter class, before any adapter
    is built (a forked worker process inherits it); returns what was set."""
    budgets = {key: float(rate) for key, rate in json.loads(os.environ.get(BUDGETS_ENV) or "{}").items()}
    adapters = build_adapters(settings)
    for key, rate in budgets.items():
        if key not in adapters or not rate > 0:
            raise ConfigError(f"{BUDGETS_ENV}: {key!r} is no marketplace, or {rate} is no budget")
        type(adapters[key]).requests_per_minute = rate
    return budgets


def main() -> int:
    try:
        settings = load_settings(env_file=None)
        resolve = json.loads(os.environ.get(RESOLVE_ENV) or "{}")
        apply_budgets(settings)
    except (ConfigError, ValueError) as err:
        print(f"leader_process: {err}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)  # as `dealscout leader` does
    try:
        asyncio.run(run_leader(settings, resolve=resolve))
    except DealScoutError as err:
        print(f"leader_process: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
