"""A backend as text: its capacity bar and the lines around it (Rich only).

The bar is drawn to scale against the pool's total capacity, left to right:

    used         space physically used (total - free)
    provisioned  given to volumes but not yet used: thin provisioning's promise
                 (allocated beyond used, for a thick pool)
    free         what is left for new volumes
    reserved     Cinder's reserved_percentage, kept back from placement (right end)

A thin pool may promise more than it has (provisioned > total): the bar then
fills, and the line below shows the over-subscription ratio against its
maximum. The legend gives the pool's own numbers (``free`` is what the pool
reports free, promised or not).
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from cinderblock.tui.model.cells import fmt_age, fmt_gb
from cinderblock.tui.model.model import BackendRecord

SEGMENTS = (  # name, character, style
    ("used", "█", Style(color="red")),
    ("provisioned", "█", Style(color="yellow")),
    ("free", "░", Style(color="green")),
    ("reserved", "▒", Style(color="magenta")),
)


def segments_gb(b: BackendRecord) -> dict[str, float]:
    """The four parts of the bar in GiB; they add up to the total."""
    total = max(b.total_gb, 0.0)
    used = min(b.used_gb, total)
    promised = b.provisioned_gb if b.thin else b.allocated_gb
    reserved = min(b.reserved_gb, total - used)
    provisioned = min(max(promised - used, 0.0), total - used - reserved)
    free = max(total - used - reserved - provisioned, 0.0)
    return {"used": used, "provisioned": provisioned, "free": free, "reserved": reserved}


def cells(parts: dict[str, float], total: float, width: int) -> dict[str, int]:
    """Whole cells per part: a part that is not zero gets at least one cell."""
    if total <= 0 or width <= 0:
        return {name: 0 for name in parts}
    out = {name: (max(1, round(gb / total * width)) if gb > 0 else 0)
           for name, gb in parts.items()}
    while sum(out.values()) > width:  # take back from the largest
        largest = max(out, key=lambda n: out[n])
        out[largest] -= 1
    out["free"] += width - sum(out.values())
    return out


def capacity_bar(b: BackendRecord, width: int, up: bool = True) -> Text:
    if b.total_gb <= 0:
        return Text("no capacity reported".ljust(width), style="dim")
    bar = Text()
    for (_name, char, style), count in zip(
        SEGMENTS, cells(segments_gb(b), b.total_gb, width).values(), strict=True
    ):
        bar.append(char * count, style if up else Style(dim=True))
    return bar


def legend(b: BackendRecord) -> Text:
    parts = segments_gb(b)
    text = Text(no_wrap=True, overflow="ellipsis")
    values = {  # the facts, where the bar shows how they split the pool
        "used": ("used", parts["used"]),
        "provisioned": ("prov", b.provisioned_gb) if b.thin else ("alloc", b.allocated_gb),
        "free": ("free", b.free_gb),
        "reserved": ("rsv", parts["reserved"]),
    }
    for name, _, style in SEGMENTS:
        label, value = values[name]
        text.append("■ ", style)
        text.append(f"{label} {fmt_gb(value)}  ")
    return text


def provisioning(b: BackendRecord) -> Text:
    text = Text(f"total {fmt_gb(b.total_gb)} · ", no_wrap=True, overflow="ellipsis")
    if b.thin:
        ratio = b.provisioned_gb / b.total_gb if b.total_gb > 0 else 0.0
        text.append(f"thin, over-subscribed {ratio:.2f} of max "
                    f"{b.max_over_subscription_ratio:g}")
    else:
        text.append("thick")
    return text


def heading(b: BackendRecord, now: float, up: bool) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    color = "green" if up else "red"
    text.append("● UP " if up else "○ DOWN ", Style(color=color, bold=True))
    text.append(b.backend, Style(bold=True))
    text.append(f"  {b.host} · {b.availability_zone} · {b.volumes} vols"
                f" · stats {fmt_age(b.age(now))} ago")
    return text
