"""The editable category map: people rename or merge discovered categories in a YAML file.

    categories:
      4: {name: "Playlists and library"}
      7: {merge_into: 4}    # category 7 is reported and learned as category 4

Ids are the stable category ids (see identity.py), so a name given once keeps applying after refits.
Seeds define the team's own categories by a name and a few example phrases (core/seeds.py):

    seeds:
      - name: "Refund"
        examples: ["I want my money back", "when will I get my refund"]
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml

from support_nlp.core.category_schema import CategoryModel
from support_nlp.core.seeds import Seed

DEFAULT_CATEGORY_MAP = Path(__file__).resolve().parents[1] / "category_map.yaml"


@dataclass(frozen=True)
class CategoryMap:
    names: dict[int, str] = field(default_factory=dict)
    merges: dict[int, int] = field(default_factory=dict)  # id -> id it is merged into
    seeds: tuple[Seed, ...] = ()

    def referenced_ids(self) -> set[int]:
        return set(self.names) | set(self.merges) | set(self.merges.values())

    def final_id(self, category_id: int) -> int:
        """Follow merges to the category that absorbs `category_id`."""
        seen = [category_id]
        while seen[-1] in self.merges:
            seen.append(self.merges[seen[-1]])
            if seen[-1] in seen[:-1]:
                raise ValueError(f"category map merges form a cycle: {' -> '.join(map(str, seen))}")
        return seen[-1]


def load_category_map(path: str | Path) -> CategoryMap:
    document = yaml.safe_load(Path(path).read_text()) or {}
    entries = document.get("categories") or {}
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: `categories` must be a mapping of category id to {{name, merge_into}}")
    names, merges = {}, {}
    for key, entry in entries.items():
        if not isinstance(key, int) or not isinstance(entry, dict) or not set(entry) <= {"name", "merge_into"}:
            raise ValueError(f"{path}: entry {key!r}: expected `<id>: {{name: ..., merge_into: <id>}}`, got {entry!r}")
        if "name" in entry:
            names[key] = str(entry["name"])
        if "merge_into" in entry:
            merges[key] = int(entry["merge_into"])
    category_map = CategoryMap(names=names, merges=merges, seeds=load_seeds(path, document.get("seeds") or []))
    for category_id in merges:
        category_map.final_id(category_id)  # raises on cycles
    return category_map


def load_seeds(path: str | Path, entries: list) -> tuple[Seed, ...]:
    seeds = []
    for position, entry in enumerate(entries if isinstance(entries, list) else [entries]):
        examples = entry.get("examples") if isinstance(entry, dict) else None
        if (
            not isinstance(entry, dict)
            or set(entry) != {"name", "examples"}
            or not str(entry["name"]).strip()
            or not isinstance(examples, list)
            or not examples
            or not all(isinstance(example, str) and example.strip() for example in examples)
        ):
            raise ValueError(
                f"{path}: seed {position + 1}: expected `- {{name: ..., examples: [phrase, ...]}}` with a name and "
                f"at least one phrase, got {entry!r}"
            )
        seeds.append(Seed(name=str(entry["name"]).strip(), examples=tuple(examples)))
    names = [seed.name for seed in seeds]
    if len(set(names)) < len(names):
        raise ValueError(
            f"{path}: seed names must be unique, got {sorted(n for n in set(names) if names.count(n) > 1)}"
        )
    return tuple(seeds)


def unknown_ids(category_map: CategoryMap, model: CategoryModel) -> list[int]:
    return sorted(category_map.referenced_ids() - set(model.names))


def apply_category_map(model: CategoryModel, category_map: CategoryMap) -> CategoryModel:
    """Names from the map win over generated ones; merged categories' tweets are relabelled to their target.

    Entries for ids the model does not have are ignored here (the cluster_labels check reports them).
    """
    known = set(model.names)
    final = {cid: category_map.final_id(cid) for cid in known}
    final = {cid: target if target in known else cid for cid, target in final.items()}
    categories = tuple(
        replace(
            c,
            name=category_map.names.get(c.id, c.seed or c.generated_name),
            named_by="category map" if c.id in category_map.names else "seed" if c.seed else "keywords",
            merged_into=final[c.id] if final[c.id] != c.id else None,
        )
        for c in model.categories
    )
    lookup = np.vectorize(final.__getitem__, otypes=[np.int32])
    labels = lookup(model.labels) if len(model.labels) else model.labels
    return replace(model, categories=categories, labels=labels)
