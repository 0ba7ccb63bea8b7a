"""The paper's data ablation (its Table 9): the same MVDiT budget trained on the pool with each filter on or off.

A variant is named by what it keeps of the four filters: ``all`` (the recipe), ``pool`` (none of them),
``no_<filter>`` (all but that one; ``no_aesthetic_motion``: all but those two) or ``only_<filter>`` (that
one alone; ``only_aesthetic_clarity``: those two). Dedup and the content rules are not the paper's steps and apply to every variant. Each variant's
videos are selected in SQL from the score tables the recipe already wrote, with the recipe's own cut lines
(sql/ablation_members.sql), so nothing is re-scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

FILTERS = ("aesthetic", "temporal", "motion", "clarity")


@dataclass(frozen=True)
class Variant:
    name: str
    filters: tuple[str, ...]  # the filters applied, in FILTERS order

    @property
    def label(self) -> str:
        """What the variant applies, for tables: 'aesthetic+temporal+motion+clarity', or 'none'."""
        return "+".join(self.filters) or "none"


def parse_variant(name: str) -> Variant:
    """A variant from its name; a name that does not follow the grammar is a clear error."""

    def filters_in(text: str) -> set[str]:
        named = set(text.split("_"))
        unknown = named - set(FILTERS)
        if unknown or not text:
            raise ValueError(
                f"ablation variant {name!r}: unknown filter(s) {sorted(unknown) or ['']}; "
                f"filters are {', '.join(FILTERS)}"
            )
        return named

    if name == "all":
        kept = set(FILTERS)
    elif name == "pool":
        kept = set()
    elif name.startswith("no_"):
        kept = set(FILTERS) - filters_in(name.removeprefix("no_"))
    elif name.startswith("only_"):
        kept = filters_in(name.removeprefix("only_"))
    else:
        raise ValueError(
            f"ablation variant {name!r}: name it all, pool, no_<filter>[_<filter>...] or "
            f"only_<filter>[_<filter>...] with filters {', '.join(FILTERS)}"
        )
    return Variant(name, tuple(f for f in FILTERS if f in kept))


def parse_variants(names: Sequence[str]) -> list[Variant]:
    variants = [parse_variant(n.strip()) for n in names if n.strip()]
    if not variants:
        raise ValueError("no ablation variants named")
    if len({v.name for v in variants}) != len(variants):
        raise ValueError(f"ablation variants named twice: {', '.join(names)}")
    return variants


def variants_frame(variants: Sequence[Variant]) -> pl.DataFrame:
    """One row per variant, one boolean column per filter: what sql/ablation_members.sql joins on."""
    return pl.DataFrame(
        [{"variant": v.name, "filters": v.label, **{f: f in v.filters for f in FILTERS}} for v in variants],
        schema={"variant": pl.String, "filters": pl.String, **{f: pl.Boolean for f in FILTERS}},
    )
