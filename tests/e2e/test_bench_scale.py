"""bench.scale: a small run fills a real cluster and measures every figure it reports."""

from __future__ import annotations

from cinderblock.bench import scale

PAGES = {"first_page", "deep_marker", "admin_all_projects_available", "admin_one_project",
         "own_project_error", "admin_all_projects_error", "own_project_named",
         "own_project_metadata", "a_page_named", "a_page_metadata", "a_page_bootable"}


def test_a_small_scale_run_reports_pages_creates_memory_and_restart() -> None:
    result = scale.run(volumes=200, creates=40)

    assert result["volumes"] == 200
    for state in ("empty", "full"):
        pages = result[state]["page_ms"]
        assert set(pages) == PAGES
        assert all(ms > 0 for ms in pages.values())
        sorted_pages = result[state]["sorted_page_ms"]
        assert set(sorted_pages) == {"size_asc", "name_desc"}
        assert all(ms > 0 for ms in sorted_pages.values())
        neighbour = result[state]["neighbour_sorted_page_ms"]
        assert set(neighbour) == {"alone", "beside_a_flood"}
        assert all(ms > 0 for ms in neighbour.values())
        counts = result[state]["count_ms"]
        assert counts["own_project"] > 0 and counts["admin_all_projects_available"] > 0
        # the user's volumes at that point: 40 before the empty state's creates, and
        # the fill and those creates (twice 40) before the full state's
        assert counts["counted"] == (40 if state == "empty" else 40 + 2 * 40 + 200)
        assert result[state]["no_lister"]["creates_per_s"] > 0
        assert result[state]["with_lister"]["pages_listed"] > 0
    assert result["fill_creates_per_s"] > 0
    assert result["restart_to_first_answer_s"] > 0
    assert set(result["page_full_over_empty"]) == set(result["full"]["page_ms"])


def test_a_direct_fill_writes_the_rows_into_the_stopped_gateway_and_reports_the_same() -> None:
    result = scale.run(volumes=300, creates=20, fill_with="direct", attached=100,
                       snapshots=50)

    assert result["fill"] == "direct"
    assert set(result["full"]["page_ms"]) == PAGES
    assert result["fill_creates_per_s"] > 0
    assert isinstance(result["gateway_bytes_per_volume"], float)
    assert result["full"]["with_lister"]["pages_listed"] > 0
    assert result["restart_to_first_answer_s"] > 0
    assert result["attachments"]["count"] == 100
    assert result["attachments"]["page_holds"] == 20  # the rows were read, and are paged
    pages = result["attachments"]["page_ms"]
    assert set(pages) == {"page", "of_a_page_of_volumes"} and all(ms > 0 for ms in pages.values())
    assert result["snapshots"]["count"] == 50 and result["snapshots"]["page_holds"] == 20
    pages = result["snapshots"]["page_ms"]
    assert set(pages) == {"page", "of_a_volume"} and all(ms > 0 for ms in pages.values())
