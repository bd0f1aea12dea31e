"""Row checks on extracted frames: what is excluded from the KPIs, and why.

Why count rather than fail: real exports contain out-of-scale scores, negative amounts, tickets
resolved before they were created, duplicates (source-schema.md). Such a row must not crash the
run or bend a number; it is excluded, counted per rule and logged, and the counts are stored with
the run so the report can say "n rows excluded".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

log = logging.getLogger(__name__)

Predicate = Callable[[pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class Rule:
    """A row for which `bad(frame)` is true is excluded and counted under `name`."""

    name: str
    bad: Predicate


def duplicate(*key: str) -> Rule:
    """A repeated key: the first row is kept, the repeats are excluded."""
    return Rule("duplicate", lambda f: f.duplicated(subset=list(key), keep="first"))


def negative(*columns: str) -> Rule:
    return Rule(
        "negative_or_missing_" + "_".join(columns),
        lambda f: pd.concat([f[c].isna() | (f[c] < 0) for c in columns], axis=1).any(axis=1),
    )


def below_zero(*columns: str) -> Rule:
    """A negative value (a missing one is kept: an open deal not priced yet is still open)."""
    return Rule(
        "negative_" + "_".join(columns),
        lambda f: pd.concat([(f[c] < 0).fillna(False) for c in columns], axis=1).any(axis=1).astype(bool),
    )


def before(later: str, earlier: str) -> Rule:
    """`later` happened before `earlier`: an impossible sequence (missing values are fine)."""
    return Rule(f"{later}_before_{earlier}", lambda f: (f[later] < f[earlier]).fillna(False).astype(bool))


def missing(*columns: str) -> Rule:
    return Rule(
        "missing_" + "_".join(columns),
        lambda f: pd.concat([f[c].isna() for c in columns], axis=1).any(axis=1),
    )


@dataclass(frozen=True)
class CheckResult:
    frame: pd.DataFrame
    rejected: dict[str, int]
    #: per rule, the rows (of the frame passed in) it excluded: to count a source row once
    #: however many extracts read it
    masks: dict[str, pd.Series] = field(default_factory=dict)


def apply_rules(name: str, frame: pd.DataFrame, rules: tuple[Rule, ...]) -> CheckResult:
    """Drop the rows that break a rule; each row is counted once, under the first rule it breaks."""
    if frame.empty or not rules:
        return CheckResult(frame, {})
    excluded = pd.Series(False, index=frame.index)
    rejected: dict[str, int] = {}
    masks: dict[str, pd.Series] = {}
    for rule in rules:
        bad = rule.bad(frame).astype(bool) & ~excluded
        n = int(bad.sum())
        if n:
            rejected[rule.name] = rejected.get(rule.name, 0) + n
            masks[rule.name] = bad if rule.name not in masks else masks[rule.name] | bad
            log.warning("%s: excluded %d rows (%s)", name, n, rule.name)
        excluded |= bad
    return CheckResult(frame.loc[~excluded].reset_index(drop=True), rejected, masks)
