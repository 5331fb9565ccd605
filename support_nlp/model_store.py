"""`python -m support_nlp.model_store`: the stored model versions, and rolling back the deployed one.

    list                      every stored version, oldest first, with its run, holdout macro-F1, status and
                              whether it holds a cascade (with the confidence below which it escalates)
    rollback [--to VERSION]   deploy VERSION, or else the newest older version that was deployed before
    adopt                     store and deploy the pair a storage from before the model store holds
                              (cluster_labels.npz, classifier.npz), so category ids and names carry over

The store is the code location's (SUPPORT_NLP_STORAGE, SUPPORT_NLP_S3_*). With DAGSTER_HOME set, a rollback is also
recorded as a materialization of `deployed_model`, so the asset's history in the UI says what is deployed and the
drift sensor counts from it. The same rollback from the UI: launch the `deploy_model` job with the version in its
config.
"""

from __future__ import annotations

import argparse
import os
import sys

import dagster as dg
from upath import UPath

from support_nlp.core.artifacts import artifact_from_bytes
from support_nlp.core.cascade import stored_cascade
from support_nlp.core.model_store import Deployment, ModelStore, ModelStoreError
from support_nlp.core.storage import CorruptArtifactError, StorageError, read_decoded
from support_nlp.definitions import build_resources
from support_nlp.defs.assets.deployment import deployed_model, deployment_metadata

ADOPTED_RUN_ID = "adopted"


def listing(store: ModelStore) -> str:
    current = store.deployed_version()
    ever_deployed = {d.version for d in store.deployments()}
    lines = [f"Model versions in {store.root}, oldest first:"]
    for v in store.versions():
        if current and v.version == current.version:
            status = "DEPLOYED"
        else:
            status = "deployed before" if v.version in ever_deployed else "never deployed"
        cascade = stored_cascade(store.folder(v.version))
        cascade_status = f"cascade < {cascade['escalate_below']:.3f}" if cascade else "no cascade"
        lines.append(
            f"  {v.version:<26} run {v.run_id[:8]}  {v.categories:>3} categories  "
            f"macro-F1 {v.macro_f1:.3f}  {status:<15}  {cascade_status:<16}  {v.encoder}"
        )
    if len(lines) == 1:
        lines.append("  none: run the `training` job")
    return "\n".join(lines)


def adopt(store: ModelStore, storage: UPath) -> Deployment:
    """The categories and classifier the IO manager stored before the model store existed, as a deployed version."""
    categories = read_decoded(storage / "cluster_labels.npz", artifact_from_bytes)
    classifier = read_decoded(storage / "classifier.npz", artifact_from_bytes)
    if classifier.category_names != {str(id_): name for id_, name in categories.names.items()}:
        raise ModelStoreError(
            f"{storage / 'classifier.npz'} was not trained on the categories of {storage / 'cluster_labels.npz'}: "
            "run the `training` job instead"
        )
    version = store.add(categories, classifier, run_id=ADOPTED_RUN_ID)
    return store.deploy(version.version, reason="adopted from cluster_labels.npz and classifier.npz")


def record_in_instance(store: ModelStore, deployment: Deployment, description: str) -> None:
    event = dg.AssetMaterialization(
        asset_key=deployed_model.key,
        description=description,
        metadata=deployment_metadata(store.version(deployment.version), deployment),
    )
    dg.DagsterInstance.get().report_runless_asset_event(event)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the stored versions and which is deployed")
    rollback = commands.add_parser("rollback", help="deploy an earlier version")
    rollback.add_argument("--to", metavar="VERSION", help="the version to deploy (default: the previous deployed)")
    commands.add_parser("adopt", help="store and deploy the pair stored before the model store existed")
    args = parser.parse_args(argv)

    resource = build_resources()["model_store"].process_config_and_initialize()
    store = resource.open()
    try:
        if args.command != "list":
            deployment = store.rollback(args.to) if args.command == "rollback" else adopt(store, resource.upath())
            message = f"deployed {deployment.version}: {deployment.reason}"
            if os.environ.get("DAGSTER_HOME"):
                record_in_instance(store, deployment, message)
            print(message)
        print(listing(store))
    except (ModelStoreError, StorageError, CorruptArtifactError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
