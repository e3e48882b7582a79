"""Which filters each listing honours, and the refusal of any other.

Cinder names the filters a listing takes in its ``resource_filters.json`` and serves them
at ``GET /resource_filters`` (3.33); a user's query naming any other is a 400
("Invalid filters ... are found in query options"). This front serves the same route
from ``RESOURCE_FILTERS``, which says what its listings honour, and refuses every other
query parameter, an admin's too: a filter a listing passed over would answer with the
unfiltered list (every volume, when the bootable ones were asked for), which a caller
cannot tell from the right answer. Cinder's admins may name any column; the filters
here are fewer than Cinder's (no ``name~`` inexact matches), and the refusal says which
are taken.

Plain code over a query's mapping; the handlers call ``check_query`` first.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from cinderblock.actors.rest.errors import bad_request

# What each listing filters by (``GET /resource_filters``, by Cinder's resource names).
RESOURCE_FILTERS: dict[str, tuple[str, ...]] = {
    "volume": ("name", "status", "metadata", "bootable", "availability_zone", "size",
               "created_at", "updated_at", "consumes_quota", "migration_status", "group_id"),
    "snapshot": ("name", "status", "volume_id", "metadata", "availability_zone",
                 "consumes_quota"),
    "attachment": ("volume_id", "status", "attach_status", "instance_id"),
    "message": ("resource_uuid", "resource_type", "event_id", "request_id",
                "message_level"),
    "pool": ("name", "volume_type"),
    "volume_type": ("is_public", "extra_specs"),  # extra_specs from 3.52
    "transfer": ("name", "volume_id"),
    "backup": ("name", "status", "volume_id"),
    "group": ("name", "status"),
    "group_snapshot": ("name", "status", "group_id"),
}
# Older names of filters, taken as Cinder takes them.
ALIASES: dict[str, str] = {"display_name": "name"}
# What every listing takes that is not a filter: pages, order, whose.
PAGING = frozenset({"limit", "marker"})
ORDER = frozenset({"sort", "sort_key", "sort_dir"})
WHOSE = frozenset({"all_tenants", "all_projects", "project_id"})


def check_query(query: Mapping[str, str], resource: str | None,
                takes: Collection[str] = PAGING | ORDER | WHOSE) -> None:
    """A 400 naming every parameter of ``query`` that is neither one of ``resource``'s
    filters (or their older names; None: a route without filters) nor one of
    ``takes``, and what is taken."""
    filters = RESOURCE_FILTERS[resource] if resource is not None else ()
    if "offset" in query and "offset" not in takes:
        raise bad_request("offset is not supported here: page with marker and limit")
    unknown = sorted({key for key in query
                      if ALIASES.get(key, key) not in filters and key not in takes})
    if unknown:
        by = f"filters by {', '.join(filters)} (GET /resource_filters?resource={resource})" \
            if filters else "has no filters"
        raise bad_request(f"Invalid filters {','.join(unknown)} are found in query options. "
                          f"This route {by} and takes "
                          f"{', '.join(sorted(takes)) or 'nothing else'}.")


def resource_filters(resource: str | None) -> list[dict[str, object]]:
    """Cinder's ``resource_filters`` view: every resource's filters, or one's (none for
    a resource this front does not list)."""
    if resource is not None and resource not in RESOURCE_FILTERS:
        return []
    wanted = RESOURCE_FILTERS if resource is None else {resource: RESOURCE_FILTERS[resource]}
    return [{"resource": name, "filters": list(filters)} for name, filters in wanted.items()]
