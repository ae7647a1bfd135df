"""The Ray executor: each group is a Ray task (``num_cpus`` = its threads) on a cluster (``work.address``) or on a
Ray started in this process.

A task trains its group without a run directory and returns each run's config, summary and metrics; the driver
writes them to the store as each task ends, so no file system need be shared with the cluster's nodes. A
stopped sweep cancels its tasks (they keep nothing: they start again when the sweep is run again).
"""

from __future__ import annotations

import os

from ..config import RunConfig
from ..errors import ConfigError
from ..store import Store
from . import Work


def check() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ConfigError("the Ray executor needs Ray: pip install 'groklab[ray]'") from None


def _train_remote(cfg_dicts: list[dict], threads: int) -> list[tuple[dict, dict, list]]:
    """Ray task: train one group on the worker; return configs, summaries and histories to the driver."""
    from ..runtime import set_threads
    from ..train import train_group

    set_threads(threads)  # the CPUs Ray reserved for the task
    results = train_group([RunConfig.from_dict(d) for d in cfg_dicts])
    return [(r.config.to_dict(), r.summary, r.history) for r in results]


def execute(work: Work) -> None:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=work.address, include_dashboard=False, log_to_driver=False,
                 **({} if work.address else {"num_cpus": os.cpu_count()}))
    store = Store(work.store_path)
    try:
        remote = ray.remote(num_cpus=work.threads)(_train_remote)
        pending = []
        for g in work.groups:
            for c in g:
                store.start_run(c, None)
            pending.append(remote.remote([c.to_dict() for c in g], work.threads))
        while pending:
            if work.stop.is_set():
                for ref in pending:
                    ray.cancel(ref, force=True)
                break
            done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            for ref in done:
                for cfg_dict, summary, history in ray.get(ref):
                    store.finish_run(RunConfig.from_dict(cfg_dict), summary, history)
            work.tick()
    finally:
        store.close()
        if started_here:
            ray.shutdown()
