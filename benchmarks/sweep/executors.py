"""Where a sweep's architecture groups run: here (local), on Ray, or as a SLURM job array (submitit).

Every executor has ``run(fn, groups, on_group, on_cell)``: it calls ``fn(group, ...)`` (the grid's
``worker.run_group``, which writes each cell's file itself and never raises for a failed cell) once per
group and reports each finished group to ``on_group(group, outcomes, error)``; ``error`` is set when
the whole task died (a lost worker, a failed job) and the sweep then records its unfinished cells as
failed. An executor with ``reports_cells = True`` also calls ``on_cell`` as each cell finishes. All
executors share the run folder and the config's feature cache URL, so they need a file system (or
object store) that every worker sees.
"""
from __future__ import annotations

import time
from pathlib import Path

EXECUTORS = ("local", "ray", "slurm")


def _cuda_count() -> int:
    try:
        import torch
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001
        return 0


# ------------------------------------------------------------------------------------------- local

_WORKER_DEVICE: str | None = None


def _init_worker(queue) -> None:
    global _WORKER_DEVICE
    _WORKER_DEVICE = queue.get()


def _pool_task(fn, group):
    return fn(group, device=_WORKER_DEVICE)


class LocalExecutor:
    """This machine. One process (this one) by default; with several GPUs (and ``device`` unset or
    "cuda") one spawned worker process per GPU, each pinned to its own ``cuda:i``. ``workers=N``
    forces N worker processes (on the config's device)."""

    def __init__(self, config=None, run_dir=None, workers: int | None = None, devices: list[str] | None = None):
        device = config.engine.device if config is not None else None
        if devices is None:
            n_gpu = _cuda_count()
            if workers is None and n_gpu > 1 and device in (None, "cuda"):
                devices = [f"cuda:{i}" for i in range(n_gpu)]
            else:
                devices = [device] * (workers or 1)
        self.devices = list(devices)
        self.workers = len(self.devices)
        self.reports_cells = self.workers == 1

    def run(self, fn, groups, on_group, on_cell=None) -> None:
        if self.workers == 1:
            for g in groups:
                try:
                    outcomes = fn(g, on_cell=on_cell, device=self.devices[0])
                except Exception as e:  # noqa: BLE001 - e.g. a config error: recorded for the group
                    on_group(g, None, e)
                else:
                    on_group(g, outcomes, None)
            return
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        for d in self.devices:
            queue.put(d)
        with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker, initargs=(queue,)) as pool:
            futures = {pool.submit(_pool_task, fn, g): g for g in groups}
            for fut in as_completed(futures):
                g = futures[fut]
                try:
                    outcomes = fut.result()
                except Exception as e:  # noqa: BLE001 - a worker died: its cells are recorded as failed
                    on_group(g, None, e)
                else:
                    on_group(g, outcomes, None)


# --------------------------------------------------------------------------------------------- ray


def gpu_share(arch: str) -> float:
    """The fraction of a GPU a group asks Ray for: small networks are packed several to a GPU
    (by the paper's MACs at 224x224: <= 1 GMAC a quarter, <= 5 GMACs a half, else a whole GPU)."""
    from lossnets.engine import get_architecture
    macs = get_architecture(arch).mflops_224
    return 0.25 if macs <= 1000 else 0.5 if macs <= 5000 else 1.0


def _ray_task(fn, group, device):
    return fn(group, device=device)


class RayExecutor:
    """A Ray cluster (``address``; None starts or joins a local one). Each group is one task with
    ``num_gpus`` ("auto": ``gpu_share`` of the arch, 0 when the device is cpu or the cluster has no
    GPU), ``num_cpus`` and ``max_retries`` (a task whose worker dies is retried; finished cells are
    skipped on retry). ``init`` holds extra ``ray.init`` keyword arguments (e.g. runtime_env)."""
    reports_cells = False

    def __init__(self, config=None, run_dir=None, address: str | None = None, num_gpus="auto", num_cpus: float = 1,
                 max_retries: int = 2, init: dict | None = None):
        self.device = config.engine.device if config is not None else None
        self.address = address
        self.num_gpus = num_gpus
        self.num_cpus = num_cpus
        self.max_retries = max_retries
        self.init = dict(init or {})

    def run(self, fn, groups, on_group, on_cell=None) -> None:
        import ray
        started = False
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, **self.init)
            started = True
        try:
            cluster_gpus = ray.cluster_resources().get("GPU", 0)
            use_gpu = cluster_gpus > 0 and self.device != "cpu" and not str(self.device or "").startswith("cpu")
            # inside a GPU task Ray sets CUDA_VISIBLE_DEVICES: "cuda" is the task's own GPU
            device = ("cuda" if use_gpu else self.device or "cpu")
            task = ray.remote(_ray_task)
            refs = {}
            for g in groups:
                gpus = (gpu_share(g.arch) if self.num_gpus == "auto" else float(self.num_gpus)) if use_gpu else 0
                ref = task.options(num_gpus=gpus, num_cpus=self.num_cpus, max_retries=self.max_retries,
                                   retry_exceptions=False).remote(fn, g, device)
                refs[ref] = g
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                for ref in done:
                    g = refs.pop(ref)
                    try:
                        outcomes = ray.get(ref)
                    except Exception as e:  # noqa: BLE001 - task failed after its retries
                        on_group(g, None, e)
                    else:
                        on_group(g, outcomes, None)
        finally:
            if started:
                ray.shutdown()


# ------------------------------------------------------------------------------------------- slurm


def _submitit_task(fn, group, device):
    return fn(group, device=device)


class SlurmExecutor:
    """A SLURM job array through submitit: one array task per architecture group. ``cluster``: None
    (auto: slurm when sbatch is there), "slurm", "local" (submitit's local processes) or "debug"
    (in this process). Other keys go to ``AutoExecutor.update_parameters`` (timeout_min,
    gpus_per_node, cpus_per_task, mem_gb, slurm_partition, slurm_array_parallelism, ...). Job logs go
    to ``folder`` (default RUN_DIR/submitit)."""
    reports_cells = False

    def __init__(self, config=None, run_dir=None, cluster: str | None = None, folder: str | None = None,
                 poll_s: float = 1.0, **parameters):
        self.device = config.engine.device if config is not None else None
        self.cluster = cluster
        self.folder = Path(folder) if folder else Path(run_dir or ".") / "submitit"
        self.poll_s = poll_s
        cpu = str(self.device or "").startswith("cpu")
        self.parameters = {"timeout_min": 24 * 60, "gpus_per_node": 0 if cpu else 1, "name": "lossnets-sweep",
                           **parameters}

    def run(self, fn, groups, on_group, on_cell=None) -> None:
        import submitit
        ex = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
        ex.update_parameters(**self.parameters)
        device = self.device
        if self.parameters.get("gpus_per_node") and device not in (None, "cuda"):
            device = "cuda"  # the job sees only its own GPUs
        jobs = ex.map_array(_submitit_task, [fn] * len(groups), groups, [device] * len(groups))
        waiting = dict(zip(jobs, groups))
        while waiting:
            for job in [j for j in waiting if j.done()]:
                g = waiting.pop(job)
                try:
                    outcomes = job.result()
                except Exception as e:  # noqa: BLE001 - the array task failed (timeout, node lost, ...)
                    on_group(g, None, e)
                else:
                    on_group(g, outcomes, None)
            if waiting:
                time.sleep(self.poll_s)


def make_executor(name: str, config=None, run_dir=None, **options):
    """An executor by name ("local", "ray", "slurm"), options from the config's [local]/[ray]/[slurm]."""
    classes = {"local": LocalExecutor, "ray": RayExecutor, "slurm": SlurmExecutor}
    if name not in classes:
        raise ValueError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
    try:
        return classes[name](config=config, run_dir=run_dir, **options)
    except TypeError as e:
        raise ValueError(f"bad options for the {name} executor: {e}") from e
