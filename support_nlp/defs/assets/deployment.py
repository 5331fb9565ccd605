"""deployed_model: which stored model pair (categories + classifier) predictions and the report use.

In the training job it runs after `classifier` and only when classifier's blocking `holdout_macro_f1_floor` check
passed, so promotion is gated by the check. Alone (the `deploy_model` job) it deploys the stored version named in
its config: a rollback from the UI. `python -m support_nlp.model_store rollback` does the same from a shell."""

import dagster as dg

from support_nlp.core.model_store import Deployment, ModelStoreError, ModelVersion
from support_nlp.defs.assets.categories import classifier
from support_nlp.resources import ModelStoreResource


class DeployConfig(dg.Config):
    # None: the version this training run stored; else a version listed by `python -m support_nlp.model_store list`.
    version: str | None = None


def deployment_metadata(version: ModelVersion, deployment: Deployment) -> dict:
    return {
        "model_version": version.version,
        "training_run_id": version.run_id,
        "trained_at": version.created,
        "deployed_because": deployment.reason,
        "holdout_agreement_macro_f1": version.macro_f1,
        "categories": version.categories,
        "encoder": version.encoder,
    }


@dg.asset(deps=[classifier], group_name="categories")
def deployed_model(
    context: dg.AssetExecutionContext, config: DeployConfig, model_store: ModelStoreResource
) -> dg.MaterializeResult:
    """The model pair that `predictions` and `category_report` read from the model store. Each materialization
    is a promotion (after a training run whose quality check passed) or a rollback (a version named in config);
    its metadata says which version and why."""
    store = model_store.open()
    name = config.version
    if name is None:
        trained = store.trained_by(context.run.run_id)
        if trained is None:
            stored = ", ".join(v.version for v in store.versions()[-5:]) or "none"
            raise dg.Failure(
                f"run {context.run.run_id} trained no model: to deploy a stored one, name it in config "
                f"(`version`); the newest stored versions: {stored}",
                allow_retries=False,
            )
        name, reason = trained.version, f"promoted by training run {context.run.run_id}"
    else:
        reason = f"deployed by run {context.run.run_id} (config version)"
    try:
        deployment = store.deploy(name, reason)
    except ModelStoreError as error:
        raise dg.Failure(str(error), allow_retries=False) from error
    return dg.MaterializeResult(metadata=deployment_metadata(store.version(name), deployment))
