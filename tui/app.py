"""The cinderblock dashboard: live flows, volumes (and snapshots, backups, groups),
backends and rates.

Data flows one way. Two workers do all network I/O: ``read_events`` drains the
cluster's event stream (tui/stream.py) and folds every batch into the model
as it arrives; ``watch_gateway`` (tui/link.py) pings the gateway and catches
the model up whenever it (re)connects. Nothing repaints per event: a timer at
``refresh_hz`` asks each visible pane to show the model as it is now, and the
panes repaint only what changed. Pausing freezes the panes; the model keeps
folding, so resuming shows the present at once.

Given the cluster's data directory, the dashboard keeps the failed flows the user
dismissed there (``tui/model/dismissals.py``), and, with ``follow``, reads
``endpoints.json`` every second: a cluster restarted on new ports (``cinderblock up``
picks free ones) is followed, the gateway link and the event stream moving to them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.events import Resize
from textual.widgets import Footer
from textual.worker import Worker

from cinderblock.protocol.messages.events import TOPIC
from cinderblock.protocol.wire.access import event_topic
from cinderblock.protocol.wire.errors import CinderblockError
from cinderblock.tui.link import GatewayLink
from cinderblock.tui.model import dismissals
from cinderblock.tui.model.model import Model
from cinderblock.tui.stream import EventStream
from cinderblock.tui.widgets.backends_pane import BackendsPane
from cinderblock.tui.widgets.create_form import CreateForm, CreateRequest
from cinderblock.tui.widgets.flow_screen import FlowScreen
from cinderblock.tui.widgets.flows_pane import FlowsPane
from cinderblock.tui.widgets.pane_tabs import PANES, PaneTabs
from cinderblock.tui.widgets.rates_pane import RatesPane
from cinderblock.tui.widgets.status_bar import StatusBar
from cinderblock.tui.widgets.volumes_pane import VolumesPane

Pane = FlowsPane | VolumesPane | BackendsPane | RatesPane
WIDE = (120, 34)  # from this size up, every pane is on screen
PANE_ACTIONS = frozenset({"show_pane", "filter", "pause", "create"})


class DashboardApp(App[None]):
    # Narrow terminals show one pane at a time (keys 1-4); from WIDE up, all four.
    CSS = """
    #panes { height: 1fr; layout: grid; grid-size: 1 1; }
    #panes > * { display: none; height: 1fr; border: round $primary 50%;
                 border-title-color: $text-accent; border-subtitle-color: $text-muted; }
    #panes > .active { display: block; }
    #panes > .active:focus-within { border: round $primary; }
    Screen.-wide #panes { grid-size: 2 2; grid-columns: 3fr 2fr; grid-rows: 1fr 1fr; }
    Screen.-wide #panes > * { display: block; }
    Screen.-wide #tabs { display: none; }
    #backends, #rates { padding: 0 1; }
    """
    TITLE = "cinderblock"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "show_pane('flows')", "Panes", key_display="1-4"),
        Binding("2", "show_pane('volumes')", "Volumes", show=False),
        Binding("3", "show_pane('backends')", "Backends", show=False),
        Binding("4", "show_pane('rates')", "Rates", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("p", "pause", "Pause"),
        Binding("c", "create", "Create"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, gateway: str | None, events: str | None, project: str = "demo",
                 admin: bool = True, *, model: Model | None = None,
                 clock: Callable[[], float] = time.time, refresh_hz: float = 5.0,
                 key: str | Path | None = None, data_dir: Path | None = None,
                 follow: bool = False) -> None:
        """``key``: the user's key file (else ``$CINDERBLOCK_KEY``; neither: plaintext)."""
        super().__init__()
        self.key = key
        self.data_dir = data_dir
        self.follow = follow and data_dir is not None
        self._saved_dismissals = 0
        self.model = model or Model(project, admin, gateway or "", events or "")
        self.clock = clock
        self.refresh_hz = refresh_hz
        self.events_endpoint = events
        self.stream: EventStream | None = None
        self.link = GatewayLink(self.model, gateway, project, admin, clock,
                                stream_connects=self._stream_connects,
                                key=key) if gateway else None
        self.active = "flows"
        self.paused = False
        self.refreshes = 0
        self.panes: dict[str, Pane] = {}

    def compose(self) -> ComposeResult:
        self.status_bar = StatusBar(self.model, id="status")
        self.tabs = PaneTabs(self.model, id="tabs")
        yield self.status_bar
        yield self.tabs
        self.panes = {
            "flows": FlowsPane(self.model, self.clock, id="flows"),
            "backends": BackendsPane(self.model, id="backends"),
            "volumes": VolumesPane(self.model, self.clock, id="volumes"),
            "rates": RatesPane(self.model, id="rates"),
        }
        with Container(id="panes"):  # grid order: flows | backends / volumes | rates
            yield from self.panes.values()
        yield Footer(compact=True, show_command_palette=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The pane keys belong to the main screen, not to a timeline or a form."""
        return not (action in PANE_ACTIONS and len(self.screen_stack) > 1)

    def on_mount(self) -> None:
        if self.data_dir is not None:
            self.model.flows.forget(dismissals.load(self.data_dir))
        if self.follow:
            self.set_interval(1.0, self.follow_endpoints)
        self.action_show_pane("flows")
        self.refresh_view()
        self.set_interval(1 / self.refresh_hz, self.refresh_view)
        if self.events_endpoint:
            self.read_events(self.events_endpoint)
        if self.link is not None:
            self.run_worker(self.link.run(), name="gateway link", group="link", exclusive=True)

    # ---- workers -----------------------------------------------------------
    def _stream_connects(self) -> int:
        return self.stream.connects if self.stream is not None else 0

    def read_events(self, endpoint: str) -> Worker[None]:
        topic = TOPIC if self.model.admin else event_topic(self.model.project)
        self.stream = EventStream(endpoint, topic=topic, key=self.key)
        return self.run_worker(self._read_events(self.stream), name="event stream",
                               group="events", exclusive=True)

    async def _read_events(self, stream: EventStream) -> None:
        try:
            await stream.run(lambda batch: self.model.apply(batch, self.clock()))
        finally:
            stream.close()

    # ---- painting ----------------------------------------------------------
    def refresh_view(self) -> None:
        if not self.status_bar.is_attached:  # the app is closing; the timer fired late
            return
        now = self.clock()
        self.model.tick(now)
        self.refreshes += 1
        self._save_dismissals()
        self.status_bar.show(now, self.paused)
        self.tabs.show(self.active, now)
        if self.paused:
            return
        for name in PANES:
            pane = self.panes[name]
            if pane.display:
                pane.show(now)

    def _save_dismissals(self) -> None:
        book = self.model.flows
        if self.data_dir is not None and book.dismissed != self._saved_dismissals:
            self._saved_dismissals = book.dismissed
            try:
                dismissals.save(self.data_dir, book.dismissed_ids)
            except OSError as exc:
                self.notify(f"dismissals not saved: {exc}", severity="warning")

    # ---- following the cluster's endpoints ---------------------------------
    def follow_endpoints(self) -> None:
        """A cluster restarted on other ports: move the link and the stream to them."""
        assert self.data_dir is not None
        try:
            found = json.loads((self.data_dir / "endpoints.json").read_text())
        except (OSError, ValueError):
            return  # not up (yet): the link says the cluster is down and keeps trying
        gateway, events = found.get("gateway"), found.get("events")
        if isinstance(gateway, str) and self.link is not None and gateway != self.link.endpoint:
            self.link.endpoint = self.model.link.gateway = gateway
        if isinstance(events, str) and events != self.events_endpoint:
            self.events_endpoint = self.model.link.events = events
            self.read_events(events)  # exclusive: the old stream's worker is cancelled

    def on_resize(self, event: Resize) -> None:
        wide = event.size.width >= WIDE[0] and event.size.height >= WIDE[1]
        if self.screen_stack:  # the main screen, even under a timeline or a form
            self.screen_stack[0].set_class(wide, "-wide")

    # ---- actions -----------------------------------------------------------
    def action_show_pane(self, name: str) -> None:
        self.active = name
        for other in PANES:
            self.panes[other].set_class(other == name, "active")
        pane = self.panes[name]
        target = pane.table if isinstance(pane, FlowsPane | VolumesPane) else pane
        target.focus()
        pane.show(self.clock())
        self.tabs.show(name, self.clock())

    def action_filter(self) -> None:
        self.action_show_pane("volumes")
        self.query_one(VolumesPane).focus_filter()

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.refresh_view()

    def action_create(self) -> None:
        self.push_screen(CreateForm(self.model.types), self._create_from_form)

    def _create_from_form(self, request: CreateRequest | None) -> None:
        if request is not None:
            self.run_worker(self.create_volume(request), group="commands")

    async def create_volume(self, request: CreateRequest) -> None:
        client = self.link.client if self.link else None
        if client is None:
            self.notify("the cluster is down: nothing was created", severity="error")
            return
        try:
            volume = await client.create_volume(request.size, name=request.name,
                                                volume_type=request.volume_type)
        except CinderblockError as exc:
            self.notify(f"create failed ({exc.code}): {exc}", severity="error", timeout=8)
            return
        self.notify(f"creating volume {volume.id[:8]} ({volume.size} GiB)")

    def on_volumes_pane_delete_asked(self, event: VolumesPane.DeleteAsked) -> None:
        client = self.link.client if self.link else None
        if client is None:
            self.notify("the cluster is down: nothing was deleted", severity="error")
            return
        delete = getattr(client, f"delete_{event.kind}", None)
        if delete is None:
            self.notify("delete: not supported by this cluster yet", severity="warning")
            return
        self.run_worker(self._delete(delete, event.kind, event.item_id), group="commands")

    async def _delete(self, delete: Callable[[str], Awaitable[object]], kind: str,
                      item_id: str) -> None:
        """A group's delete leaves its volumes (Cinder's ``delete-volumes`` false): one
        that has some is refused, and the notification says so."""
        try:
            await delete(item_id)
        except CinderblockError as exc:
            self.notify(f"delete failed ({exc.code}): {exc}", severity="error", timeout=8)
            return
        self.notify(f"deleting {kind} {item_id[:8]}")

    def on_flows_pane_opened(self, event: FlowsPane.Opened) -> None:
        self.push_screen(FlowScreen(event.flow, self.model.flows, self.clock))


def run(gateway: str, events: str, project: str = "demo", admin: bool = True,
        data_dir: Path | None = None, follow: bool = False) -> None:
    """Open the dashboard on a running cluster (``cinderblock tui``)."""
    DashboardApp(gateway, events, project, admin, data_dir=data_dir, follow=follow).run()
