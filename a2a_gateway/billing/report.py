"""What the reconciliation found: one finding per violated invariant and subject."""

from __future__ import annotations

from dataclasses import dataclass, field

# What each invariant says (reference §4.6), printed with the findings.
INVARIANTS = {
    "I1": "double entry: debits equal credits, pending and posted, over all accounts",
    "I2": "replay: every account's counters equal the sums of its transfers",
    "I3": "no overdraft: wallets, promo accounts, escrow and revenue never go below zero",
    "I4": "holds: escrow holds exactly the pending holds; each hold resolves at most once",
    "I5": "task and money: a captured hold pays price - fee and fee; a task's end settles its hold",
    "I6": "purchases: one purchase per checkout session and per event",
    "I7": "conservation: credits inside equal purchases plus grants",
    "I8": "immutability: every transfer is well formed and its id is the uuid5 of its reference",
    "I9": "balance view: balance, held and totals match the transfers",
    "orphan": "a pending hold nobody will settle (expired, its task ended, or it has no task)",
    "cap": "spend caps: a key's counter of a day equals the prices its holds of that day hold or captured",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One violation: which invariant, about what (account id, task id, transfer id), and the numbers."""

    invariant: str
    subject: str
    detail: str

    def line(self) -> str:
        """One printable line."""
        return f"{self.invariant} {self.subject}: {self.detail}"


@dataclass(slots=True)
class LedgerReport:
    """The outcome of ``ledger check``; ``ok`` only when nothing was found."""

    accounts: int = 0
    transfers: int = 0
    holds: int = 0
    pending_holds: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No finding at all."""
        return not self.findings

    def add(self, invariant: str, subject: str, detail: str) -> None:
        """Record a finding."""
        self.findings.append(Finding(invariant, subject, detail))

    def of(self, invariant: str) -> list[Finding]:
        """The findings about one invariant."""
        return [f for f in self.findings if f.invariant == invariant]

    def lines(self) -> list[str]:
        """What the CLI prints: a summary, then each finding under its invariant's meaning."""
        out = [
            f"ledger: {self.accounts} accounts, {self.transfers} transfers, "
            f"{self.holds} holds ({self.pending_holds} pending): "
            + ("OK" if self.ok else f"{len(self.findings)} finding(s)")
        ]
        for name, meaning in INVARIANTS.items():
            found = self.of(name)
            if found:
                out.append(f"{name} {meaning}:")
                out.extend(f"  {f.subject}: {f.detail}" for f in found)
        return out
