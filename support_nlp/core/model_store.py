"""Every trained model pair (categories + classifier), kept by training run, and which one is deployed.

Layout under the store's root (a folder or `s3://` prefix):

    <root>/versions/<version>/categories.npz   the CategoryModel of that training run
    <root>/versions/<version>/classifier.npz   the ClassifierModel trained on it
    <root>/versions/<version>/version.json     written last: a version without it is an interrupted save
    <root>/deployments.json                    every deployment, oldest first; the last one is live

Versions sort by training time, so the newest is last. Deploying appends to the history instead of moving files,
so a rollback is one more deployment of an earlier version, and the history says who was live when.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from upath import UPath

from support_nlp.core.artifacts import artifact_from_bytes, artifact_to_bytes
from support_nlp.core.categories import CategoryModel
from support_nlp.core.classifier import ClassifierModel
from support_nlp.core.storage import list_names, storage_errors, write_atomically

VERSIONS_FOLDER = "versions"
DEPLOYMENTS_FILE = "deployments.json"
VERSION_FILE = "version.json"
CATEGORIES_FILE = "categories.npz"
CLASSIFIER_FILE = "classifier.npz"


class ModelStoreError(LookupError):
    """A version or deployment that the store does not hold."""


@dataclass(frozen=True)
class ModelVersion:
    version: str
    trained_at: str  # ISO 8601, UTC
    run_id: str
    encoder: str  # the identity of the encoder whose vectors both models were fitted on
    categories: int
    holdout_macro_f1: float


@dataclass(frozen=True)
class Deployment:
    version: str
    deployed_at: str  # ISO 8601, UTC
    reason: str


@dataclass(frozen=True)
class StoredModel:
    version: ModelVersion
    categories: CategoryModel
    classifier: ClassifierModel


def version_name(trained_at: datetime, run_id: str) -> str:
    return f"{trained_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{run_id[:8]}"


class ModelStore:
    def __init__(self, root: UPath):
        self.root = root

    def _folder(self, version: str) -> UPath:
        return self.root / VERSIONS_FOLDER / version

    def save(self, categories: CategoryModel, classifier: ClassifierModel, run_id: str) -> ModelVersion:
        """Store a trained pair as a new version (not deployed)."""
        trained_at = datetime.now(UTC)
        described = ModelVersion(
            version=version_name(trained_at, run_id),
            trained_at=trained_at.isoformat(timespec="seconds"),
            run_id=run_id,
            encoder=classifier.embedding_model,
            categories=categories.k,
            holdout_macro_f1=round(float(classifier.metrics.get("agreement_macro_f1", float("nan"))), 4),
        )
        folder = self._folder(described.version)
        with storage_errors("create", folder):
            folder.mkdir(parents=True, exist_ok=True)
        for name, artifact in ((CATEGORIES_FILE, categories), (CLASSIFIER_FILE, classifier)):
            with storage_errors("write", folder / name):
                write_atomically(folder / name, artifact_to_bytes(artifact))
        with storage_errors("write", folder / VERSION_FILE):
            write_atomically(folder / VERSION_FILE, json.dumps(asdict(described), indent=1).encode())
        return described

    def versions(self) -> list[ModelVersion]:
        """Completely saved versions, oldest first."""
        try:
            names = list_names(self.root / VERSIONS_FOLDER)
        except (FileNotFoundError, NotADirectoryError):
            return []
        described = []
        for name in names:
            path = self._folder(name) / VERSION_FILE
            try:
                with storage_errors("read", path):
                    described.append(ModelVersion(**json.loads(path.read_bytes())))
            except FileNotFoundError:
                continue  # an interrupted save: its models may be partial
        return described

    def load(self, version: str) -> StoredModel:
        known = {v.version: v for v in self.versions()}
        if version not in known:
            raise ModelStoreError(
                f"model version {version!r} is not in {self.root}; stored versions: {sorted(known) or 'none'}"
            )
        folder = self._folder(version)
        artifacts = {}
        for name in (CATEGORIES_FILE, CLASSIFIER_FILE):
            with storage_errors("read", folder / name):
                artifacts[name] = artifact_from_bytes((folder / name).read_bytes())
        return StoredModel(known[version], artifacts[CATEGORIES_FILE], artifacts[CLASSIFIER_FILE])

    def deployments(self) -> list[Deployment]:
        path = self.root / DEPLOYMENTS_FILE
        try:
            with storage_errors("read", path):
                return [Deployment(**entry) for entry in json.loads(path.read_bytes())]
        except FileNotFoundError:
            return []

    def deploy(self, version: str, reason: str) -> Deployment:
        """Make `version` the live model; earlier deployments stay in the history."""
        self.load(version)  # refuses versions the store does not hold, before anything changes
        deployment = Deployment(version, datetime.now(UTC).isoformat(timespec="seconds"), reason)
        history = [*self.deployments(), deployment]
        path = self.root / DEPLOYMENTS_FILE
        with storage_errors("write", path):
            write_atomically(path, json.dumps([asdict(entry) for entry in history], indent=1).encode())
        return deployment

    def deployed(self) -> StoredModel | None:
        history = self.deployments()
        return self.load(history[-1].version) if history else None

    def rollback(self) -> Deployment:
        """Redeploy the version that was live before the current one."""
        history = self.deployments()
        earlier = [entry.version for entry in history[:-1] if entry.version != history[-1].version] if history else []
        if not earlier:
            raise ModelStoreError(f"nothing to roll back to in {self.root}: {len(history)} deployment(s) so far")
        return self.deploy(earlier[-1], reason=f"rollback from {history[-1].version}")
