"""Every trained model pair (categories + the classifier trained on exactly them), versioned by the training run
that made it, and which pair is deployed.

Layout under the store's root (a folder or `s3://` prefix):

    versions/<version>/categories.npz     the CategoryModel
    versions/<version>/classifier.npz     the ClassifierModel
    versions/<version>/cascade_texts.json.gz  the training days' texts the version's cascade is fitted and
                                          calibrated on (`core.cascade.cascade_texts_of`), written by training
    versions/<version>/manifest.json      version, run id, created, encoder identity, holdout metrics; written
                                          last, so a version a crash left half-written is never listed
    versions/<version>/cascade.json       optional, written at the first use of the version's cascade
                                          (`core.cascade.load_cascade`), with the cascade-<digest>.npz it names:
                                          the student's classifier and the escalation threshold
    deployments/<time>-<id>.json          one record per promotion or rollback; the newest names the deployed
                                          version

Nothing is rewritten in place: concurrent training runs each write their own version folder and their own
deployment record, so no writer loses another's update (the newest record wins), and each file is replaced whole
(`write_atomically`). The deployment records are also the history a rollback steps back through.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from upath import UPath

from support_nlp.core.artifacts import artifact_from_bytes, artifact_to_bytes
from support_nlp.core.categories import CategoryModel
from support_nlp.core.classifier import ClassifierModel
from support_nlp.core.storage import list_names, read_decoded, write_file

CATEGORIES_FILE = "categories.npz"
CLASSIFIER_FILE = "classifier.npz"
MANIFEST_FILE = "manifest.json"
# The holdout figures a version is judged and chosen by, copied from the classifier's metrics.
HOLDOUT_KEYS = ("agreement_macro_f1", "agreement_accuracy", "holdout_rows", "train_days", "holdout_days")


def holdout_of(classifier: ClassifierModel) -> dict:
    """The classifier's HOLDOUT_KEYS as the manifest's JSON holds them (a version reads the same stored or not)."""
    return json.loads(json.dumps({key: getattr(classifier.metrics, key) for key in HOLDOUT_KEYS}))


class ModelStoreError(LookupError):
    """A version that does not exist, nothing deployed, or nothing to roll back to; the message says which."""


@dataclass(frozen=True)
class ModelVersion:
    """The manifest of one stored pair."""

    version: str
    run_id: str
    created: str  # ISO 8601, UTC, to the microsecond: versions of the same second stay ordered
    encoder: str  # the encoder identity the classifier's vectors came from
    categories: int
    holdout: dict

    @property
    def macro_f1(self) -> float:
        return self.holdout["agreement_macro_f1"]


@dataclass(frozen=True)
class Deployment:
    version: str
    deployed_at: str  # ISO 8601, UTC
    reason: str


@dataclass(frozen=True)
class ModelPair:
    version: ModelVersion
    categories: CategoryModel
    classifier: ClassifierModel


class ModelStore:
    def __init__(self, root: UPath):
        self.root = root

    def folder(self, version: str) -> UPath:
        return self.root / "versions" / version

    # ------------------------------------------------------------------------------------------- versions

    def add(
        self,
        categories: CategoryModel,
        classifier: ClassifierModel,
        run_id: str,
        files: Mapping[str, bytes] | None = None,
    ) -> ModelVersion:
        """Store a trained pair as a new version, not deployed; `files` (name: content) are more of the version's
        files, written before its manifest like the pair."""
        created = datetime.now(UTC)
        stored = ModelVersion(
            version=f"{created:%Y%m%dT%H%M%SZ}-{run_id[:8]}",
            run_id=run_id,
            created=created.isoformat(),
            encoder=classifier.embedding_model,
            categories=categories.k,
            holdout=holdout_of(classifier),
        )
        folder = self.folder(stored.version)
        write_file(folder / CATEGORIES_FILE, artifact_to_bytes(categories))
        write_file(folder / CLASSIFIER_FILE, artifact_to_bytes(classifier))
        for name, data in (files or {}).items():
            write_file(folder / name, data)
        write_file(folder / MANIFEST_FILE, json.dumps(asdict(stored), indent=2).encode())
        return stored

    def versions(self) -> list[ModelVersion]:
        """Every completely stored version, oldest first."""
        return sorted(self.complete(self.names("versions")), key=lambda v: (v.created, v.version))

    def complete(self, names: list[str]) -> list[ModelVersion]:
        """The versions among `names` that have a manifest; the others are saves that never finished."""
        found = []
        for name in names:
            try:
                found.append(self.version(name))
            except ModelStoreError:
                continue
        return found

    def version(self, name: str) -> ModelVersion:
        try:
            return read_decoded(self.folder(name) / MANIFEST_FILE, lambda data: ModelVersion(**json.loads(data)))
        except FileNotFoundError as missing:
            raise ModelStoreError(f"no model version {name!r} in {self.root}") from missing

    def load(self, name: str) -> ModelPair:
        stored = self.version(name)
        folder = self.folder(name)
        return ModelPair(
            version=stored,
            categories=read_decoded(folder / CATEGORIES_FILE, artifact_from_bytes),
            classifier=read_decoded(folder / CLASSIFIER_FILE, artifact_from_bytes),
        )

    def trained_by(self, run_id: str) -> ModelVersion | None:
        """The newest version the run `run_id` stored (its name ends with the run id's start: only those are read)."""
        candidates = self.complete([name for name in self.names("versions") if name.endswith(f"-{run_id[:8]}")])
        return max((v for v in candidates if v.run_id == run_id), key=lambda v: v.created, default=None)

    # ---------------------------------------------------------------------------------------- deployments

    def deploy(self, name: str, reason: str) -> Deployment:
        """Make the stored version `name` the deployed one; it is read whole first, so a damaged version is
        refused (CorruptArtifactError) instead of deployed."""
        self.load(name)
        deployed_at = datetime.now(UTC)
        deployment = Deployment(version=name, deployed_at=deployed_at.isoformat(timespec="seconds"), reason=reason)
        record = f"{deployed_at:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}.json"
        write_file(self.root / "deployments" / record, json.dumps(asdict(deployment), indent=2).encode())
        return deployment

    def deployments(self) -> list[Deployment]:
        """Every promotion and rollback, oldest first."""
        return [self.deployment(name) for name in self.deployment_records()]

    def deployment_records(self) -> list[str]:
        return [name for name in self.names("deployments") if name.endswith(".json")]

    def deployment(self, record: str) -> Deployment:
        return read_decoded(self.root / "deployments" / record, lambda data: Deployment(**json.loads(data)))

    def deployed_version(self) -> ModelVersion | None:
        # Only the newest record is read: every prediction run asks, and the history grows with each retrain.
        records = self.deployment_records()
        return self.version(self.deployment(records[-1]).version) if records else None

    def deployed(self) -> ModelPair | None:
        current = self.deployed_version()
        return self.load(current.version) if current else None

    def rollback(self, to: str | None = None) -> Deployment:
        """Deploy `to`, or else the newest version older than the deployed one that was itself deployed once:
        repeated rollbacks step further back, and a version refused at its quality gate is never chosen."""
        current = self.deployed_version()
        if to is None:
            if current is None:
                raise ModelStoreError(f"no model is deployed in {self.root}: nothing to roll back")
            ever_deployed = {d.version for d in self.deployments()}
            versions = [v.version for v in self.versions()]
            earlier = [v for v in versions[: versions.index(current.version)] if v in ever_deployed]
            if not earlier:
                raise ModelStoreError(f"no version older than {current.version} was ever deployed")
            to = earlier[-1]
        previous = f" (was {current.version})" if current else ""
        return self.deploy(to, reason=f"rollback{previous}")

    # ------------------------------------------------------------------------------------------- storage

    def names(self, folder: str) -> list[str]:
        try:
            return list_names(self.root / folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
