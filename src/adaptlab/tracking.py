"""Record runs in MLflow — eval runs (params, metrics with CIs, the case file's hash, results and HTML) and
training runs (params, dataset fingerprints, loss curves, the adapter, registered with its lineage).

Default backend: a SQLite database in the project folder (sqlite:///<home>/mlflow.db, artifacts in
<home>/mlartifacts) — `mlflow ui --backend-store-uri sqlite:///.adaptlab/mlflow.db` browses it. Any tracking
URI (an MLflow server) can be configured instead.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adaptlab.errors import BackendError, ConfigError
from adaptlab.types import Interval

_PARAM_LIMIT = 500  # characters; MLflow caps param values, and long prompts belong in the results artifact


class MlflowTracker:
    def __init__(self, tracking_uri: str, experiment: str, home: Path) -> None:
        from mlflow.tracking import MlflowClient

        # MLflow logs its database migrations at INFO (after configuring its logger on import).
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)

        self.tracking_uri = tracking_uri or f"sqlite:///{home / 'mlflow.db'}"
        try:
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
            found = self._client.get_experiment_by_name(experiment)
            if found is None:
                # A server (http/https/databricks) decides where artifacts go; a local database would otherwise
                # put them in ./mlruns of whatever directory the command ran in.
                remote = self.tracking_uri.split(":", 1)[0] in ("http", "https", "databricks")
                artifacts = None if remote else (home / "mlartifacts").resolve().as_uri()
                self._experiment_id = self._client.create_experiment(experiment, artifact_location=artifacts)
            else:
                self._experiment_id = found.experiment_id
        except Exception as exc:  # MLflow raises many types (MlflowException, requests, sqlalchemy)
            raise ConfigError(f"MLflow tracking at {self.tracking_uri!r} failed: {exc} — fix tracking.uri, "
                              f"or set tracking.enabled = false to run without MLflow.") from exc

    def start(self, run_name: str, tags: dict[str, str]) -> str:
        run = self._client.create_run(self._experiment_id, run_name=run_name, tags=tags)
        return run.info.run_id

    def log(self, run_id: str, *, params: dict[str, Any] | None = None, metrics: dict[str, Interval] | None = None,
            extra_metrics: dict[str, float] | None = None, artifacts: Sequence[Path] = ()) -> None:
        """Params, metrics (each interval as NAME, NAME_ci_low, NAME_ci_high, NAME_n) and artifact files."""
        import time

        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        param_entities = [Param(key, _param_value(value)) for key, value in (params or {}).items()]
        metric_entities = []
        for name, interval in (metrics or {}).items():
            for suffix, value in (("", interval.value), ("_ci_low", interval.low), ("_ci_high", interval.high),
                                  ("_n", float(interval.n))):
                if value is not None and not math.isnan(value):
                    metric_entities.append(Metric(f"{name}{suffix}", float(value), now, 0))
        for name, value in (extra_metrics or {}).items():
            if value is not None and not math.isnan(value):
                metric_entities.append(Metric(name, float(value), now, 0))
        try:
            self._client.log_batch(run_id, metrics=metric_entities, params=param_entities)
            for path in artifacts:
                self._client.log_artifact(run_id, str(path))
        except Exception as exc:
            raise BackendError(f"MLflow could not record run {run_id} at {self.tracking_uri}: {exc}") from exc

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._client.set_tag(run_id, key, value)

    def log_series(self, run_id: str, name: str, points: Sequence[tuple[int, float]]) -> None:
        """A curve (e.g. training loss by step) as one metric with steps."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        entities = [Metric(name, float(value), now, int(step)) for step, value in points]
        for start in range(0, len(entities), 900):  # MLflow caps a batch at 1000 metrics
            self._client.log_batch(run_id, metrics=entities[start:start + 900])

    def log_directory(self, run_id: str, directory: Path, artifact_path: str) -> str:
        """Upload a folder as run artifacts; returns its artifact URI (what a registered model points to)."""
        self._client.log_artifacts(run_id, str(directory), artifact_path)
        return f"{self._client.get_run(run_id).info.artifact_uri}/{artifact_path}"

    def register(self, name: str, source: str, run_id: str, tags: dict[str, str]) -> str:
        """A new version of registered model `name` (created on first use); returns the version number."""
        from mlflow.exceptions import MlflowException

        try:
            self._client.create_registered_model(name, description="LoRA adapters trained by adaptlab")
        except MlflowException as exc:
            if "already exists" not in str(exc).lower() and "RESOURCE_ALREADY_EXISTS" not in str(exc):
                raise
        version = self._client.create_model_version(name, source=source, run_id=run_id, tags=tags)
        return str(version.version)

    def runs(self, limit: int = 50) -> list[Any]:
        """The experiment's most recent runs, newest first."""
        return self._client.search_runs([self._experiment_id], order_by=["attributes.start_time DESC"],
                                        max_results=limit)

    def model_versions(self, name_prefix: str) -> list[Any]:
        versions = self._client.search_model_versions(f"name LIKE '{name_prefix}%'")
        return sorted(versions, key=lambda v: (v.name, int(v.version)))

    def reopen(self, run_id: str) -> None:
        """An interrupted run continued by `--resume`: running again, its params and metrics still to log."""
        self._client.update_run(run_id, status="RUNNING")

    def end(self, run_id: str, status: str) -> None:
        self._client.set_terminated(run_id, status=status)

    def download_results(self, run_id: str, destination: Path) -> Path | None:
        """The results.json artifact of an earlier run (for --compare when the local store lacks it)."""
        try:
            return Path(self._client.download_artifacts(run_id, "results.json", str(destination)))
        except Exception:
            return None


def _param_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _PARAM_LIMIT else text[: _PARAM_LIMIT - 1] + "…"
