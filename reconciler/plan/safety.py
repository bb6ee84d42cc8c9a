"""When a plan needs --force: removals it implies but does not state, or too large a share of
change (octoDNS's threshold). The planner, `apply` and `apply --plan` all decide it here, from
the numbers the plan document keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.desired.models import Policy
from reconciler.errors import UnsafePlan
from reconciler.plan.objects import ObjectRef


@dataclass(frozen=True, slots=True)
class SafetyThreshold:
    """Changing or removing more than `max_change_share` of the owned objects needs --force,
    once there are at least `min_objects` of them (Policy.MaxChangeShare, .MinObjectsForThreshold)."""

    max_change_share: float
    min_objects: int

    @classmethod
    def of(cls, policy: Policy) -> SafetyThreshold:
        return cls(policy.MaxChangeShare, policy.MinObjectsForThreshold)

    def exceeded(self, managed: int, touched: int) -> bool:
        return managed > 0 and managed >= self.min_objects and touched / managed > self.max_change_share


DEFAULT_THRESHOLD = SafetyThreshold.of(Policy())


class BlockedRemoval(str):
    """An owned account that left the desired state while Policy.Prune is on: removing it needs
    a statement under Removed.Accounts. The sentence the plan file shows, knowing its object."""

    object: ObjectRef

    def __new__(cls, ref: ObjectRef) -> BlockedRemoval:
        self = super().__new__(cls, f"{ref} left the desired state, but removing an account needs an explicit "
                                    "statement: list it under Removed.Accounts")
        self.object = ref
        return self

    def __getnewargs__(self) -> tuple[ObjectRef]:  # copy and pickle rebuild via __new__
        return (self.object,)


@dataclass(frozen=True, slots=True)
class UnstatedRemovals:
    """The plan implies removals it does not state (the `blocked` sentences); `operations`:
    how many operations it has besides (what --force would apply)."""

    blocked: tuple[str, ...]
    operations: int

    def __str__(self) -> str:
        if self.operations:
            n = self.operations
            remedy = (f"re-run with --force to apply the other {n} operation{'s' if n != 1 else ''} "
                      "(the blocked objects stay)")
        else:
            remedy = ("there is nothing else to apply: list them under Removed.Accounts to remove them, "
                      "or set Policy.Prune off to keep them")
        return f"the plan implies removals that are not stated; {remedy}:\n  " + "\n  ".join(self.blocked)


@dataclass(frozen=True, slots=True)
class TooMuchChange:
    """The plan touches more than the threshold's share of the managed objects."""

    managed: int
    touched: int
    threshold: SafetyThreshold

    def __str__(self) -> str:
        return (f"too much change: the plan changes or removes {self.touched} of {self.managed} managed objects "
                f"({self.touched / self.managed:.0%} > {self.threshold.max_change_share:.0%}, "
                "Policy.MaxChangeShare); re-run with --force to apply it")


SafetyProblem = UnstatedRemovals | TooMuchChange


def safety_problem(managed: int, touched: int, threshold: SafetyThreshold,
                   blocked: Sequence[str], operations: int) -> SafetyProblem | None:
    """Why a plan of `operations` operations needs --force, or None."""
    if blocked:
        return UnstatedRemovals(tuple(blocked), operations)
    if threshold.exceeded(managed, touched):
        return TooMuchChange(managed, touched, threshold)
    return None


def require_safe(problem: SafetyProblem | None, *, force: bool) -> None:
    """Refuse a plan with a problem unless forced."""
    if problem is not None and not force:
        raise UnsafePlan(problem)
