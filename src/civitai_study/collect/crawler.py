"""Crawl ``/images`` or ``/models`` into a snapshot, resumably and without bias.

Why each step (see ``../shared/docs/civitai-api.md``):
- the request asks for every NSFW level and for prompts, because the defaults hide both;
- it follows ``metadata.nextCursor`` only (page numbers stop at 1,000 items) and treats an empty
  page that still has a cursor as "keep going";
- rows go to Parquet parts that are fsynced before the checkpoint that points past them, so a
  re-run after a crash continues exactly where the durable data ends;
- a crawl that asked for all levels but sees nothing above PG-13 over many items is clamped (a
  restricted region or an anonymous cap) and stops rather than writing a biased snapshot.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import limits
from ..importers.common import TOOL
from ..importers.parse import (
    Hasher,
    RecordError,
    iter_items,
    normalise_cursor,
    parse_image,
    parse_model,
    to_timestamp,
)
from ..importers.parts import ensure_all_tables, quarantine_summary, remove_parts_from
from ..importers.sink import Sink
from ..pseudonymise import Pseudonymiser, load_or_create_key
from ..snapshot import MANIFEST, Snapshot, load_snapshot, write_manifest
from .checkpoint import CrawlState
from .client import DEFAULT_BASE_URL, DEFAULT_RATE, ApiClient, ApiError
from .progress import Progress
from .scrub_secrets import redact

log = logging.getLogger(__name__)

#: What each endpoint is asked for. All NSFW levels, archived models, prompts (withMeta).
REQUESTS: dict[str, dict[str, Any]] = {
    "images": {"browsingLevel": 31, "withMeta": "true", "limit": 200, "sort": "Newest",
               "period": "AllTime"},
    "models": {"nsfw": "true", "archived": "true", "limit": 100, "sort": "Newest",
               "period": "AllTime"},
}
ABOVE_PG13 = 4 | 8 | 16


class RegionClampError(RuntimeError):
    """All levels were requested but only SFW came back: the answer is clamped."""


@dataclass
class CollectOptions:
    base_url: str = DEFAULT_BASE_URL
    since: str | None = None
    until: str | None = None
    rate: float | None = DEFAULT_RATE
    max_items: int | None = None
    timeout: float = 60.0
    part_rows: int = 20_000       # rows per part; a crash loses at most this much work
    flush_seconds: float = 60.0   # ... or this much time
    clamp_items: int = 2_000      # items without any R/X/XXX that mean "clamped"
    max_empty_pages: int = 200    # consecutive empty pages with a cursor before giving up
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    max_attempts: int = 10
    log_every: float = 60.0


def _bound(value: str | None, name: str) -> datetime | None:
    try:
        return to_timestamp(value, name)
    except RecordError:
        raise ValueError(f"--{name} {value!r} is not a date; use YYYY-MM-DD or ISO 8601") from None


class _Crawl:
    """One run of one crawl; state lives in :class:`CrawlState` between runs."""

    def __init__(self, endpoint: str, out: Path, options: CollectOptions, hasher: Hasher):
        if endpoint not in REQUESTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; choose images or models")
        self.endpoint, self.out, self.opt = endpoint, out, options
        self.since = _bound(options.since, "since")
        self.until = _bound(options.until, "until")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError(f"--since {options.since} is not before --until {options.until} "
                             "(until is exclusive): the window is empty; swap or fix the dates")
        self.request = dict(REQUESTS[endpoint])
        window = {"since": options.since, "until": options.until}
        out.mkdir(parents=True, exist_ok=True)
        state = CrawlState.load(out)
        if state is None and ((out / MANIFEST).exists() or any(out.glob("*.parquet"))):
            raise ValueError(f"{out} already holds a snapshot that is not a crawl; collect into "
                             "an empty folder (or a folder of an interrupted crawl to resume it)")
        if state is not None and not state.same_crawl(endpoint, self.request, window):
            raise ValueError(f"{out} holds a different crawl ({state.endpoint}, window "
                             f"{state.window}); use another --out or remove {out}")
        if state is None:
            started = datetime.now(UTC).replace(microsecond=0).isoformat()
            state = CrawlState(endpoint, self.request, window, started_at=started)
        self.state = state
        self.hasher = hasher
        self.sink = Sink(out, hasher)
        self.client = ApiClient(options.base_url, rate=options.rate, timeout=options.timeout,
                                max_attempts=options.max_attempts,
                                backoff_initial=options.backoff_initial,
                                backoff_max=options.backoff_max)
        self._requests_base = state.requests
        self._retries_base = state.retries

    # ----------------------------------------------------------------- per item
    def _in_window(self, created: datetime | None) -> bool:
        if created is None:
            return self.since is None and self.until is None
        return (self.since is None or created >= self.since) and \
            (self.until is None or created < self.until)

    def _take(self, raw: Any) -> tuple[int, datetime | None]:
        """Parse one item into the sink; returns (items accepted, its date for the stop rule)."""
        kind = "image" if self.endpoint == "images" else "model"
        try:
            if self.endpoint == "images":
                row = parse_image(raw, self.hasher)
                created, high = row["created_at"], bool(row["nsfw_level"] & ABOVE_PG13)
                parsed = row
            else:
                parsed = parse_model(raw, self.hasher, source="models_api")
                created = parsed.model["created_at"]
                # a model's level mask can carry R bits even under a clamp (it intersects 3);
                # its preview images are filtered to the granted level, so judge by those
                high = bool(parsed.model["nsfw"]) or any(
                    (i["nsfw_level"] or 0) & ABOVE_PG13 for i in parsed.images)
        except RecordError as err:
            self.sink.reject(kind, err, raw)
            return 0, None
        # an image not rated at bit level (2023 shape: only the boolean nsfw) cannot show
        # whether the answer was clamped; it is left out of the check
        informative = self.endpoint != "images" or parsed["nsfw_level"] != 0
        self.state.clamp_observed += informative
        self.state.clamp_above_pg13 += high
        if not self._in_window(created):
            self.state.outside_window += 1
            return 0, created
        if self.endpoint == "images":
            added = self.sink.add_image(parsed)
        else:
            added = self.sink.add_model(parsed)
        return int(added), created

    # ----------------------------------------------------------------- durability
    def _flush(self, cursor: str | None) -> None:
        """Parts first (durable), then the checkpoint that points past them."""
        self.sink.flush(self.state.next_part)
        self.state.next_part += 1
        # items counted as accepted that the flush found already on disk (a resumed crawl)
        self.state.accepted -= self.sink.late_duplicates.get(self.endpoint, 0)
        self.sink.late_duplicates.clear()
        self.state.cursor = cursor
        self.state.requests = self._requests_base + self.client.stats.requests
        self.state.retries = self._retries_base + self.client.stats.retries
        for table, n in self.sink.duplicates.items():
            self.state.duplicates[table] = self.state.duplicates.get(table, 0) + n
        self.sink.duplicates.clear()
        self.state.save(self.out)

    def _check_clamp(self) -> None:
        s = self.state
        if s.clamp_above_pg13 == 0 and s.clamp_observed >= self.opt.clamp_items:
            raise RegionClampError(
                f"asked /{self.endpoint} for every NSFW level ({_asked(self.request)}) but "
                f"received none above PG-13 in {s.clamp_observed:,} items: the answer looks "
                "clamped to SFW (a restricted region, an anonymous cap, or a server that "
                "ignores the level parameter). Stopping instead of writing a biased snapshot; "
                "collect from an unrestricted network, set CIVITAI_API_KEY, or pass "
                "--clamp-items to change the threshold."
            )

    # ----------------------------------------------------------------- main loop
    def run(self) -> Snapshot:
        s = self.state
        if s.done:
            self.client.close()
            return self._finish()
        removed = remove_parts_from(self.out, s.next_part)
        if removed:
            log.info("resuming: removed %d part(s) written after the last checkpoint",
                     len(removed))
        if s.runs:
            log.info("resuming %s crawl at part %d (%s items so far)", self.endpoint,
                     s.next_part, f"{s.accepted:,}")
        s.runs += 1
        self.sink.load_seen()
        progress = Progress(f"collect {self.endpoint}", initial=s.accepted,
                            every=self.opt.log_every)
        cursor, empty_run, last_flush = s.cursor, 0, time.monotonic()
        try:
            while True:
                params = dict(self.request)
                if cursor is not None:
                    params["cursor"] = cursor
                payload = self.client.get_json(f"/{self.endpoint}", params, expect="items")
                items = list(iter_items(payload))
                metadata = payload.get("metadata") if isinstance(payload, dict) else None
                next_cursor = normalise_cursor((metadata or {}).get("nextCursor"))
                accepted, dates = 0, []
                for raw in items:
                    n, created = self._take(raw)
                    accepted += n
                    if created is not None:
                        dates.append(created)
                s.pages += 1
                s.accepted += accepted
                progress.update(accepted, s.pages)
                empty_run = empty_run + 1 if not items else 0
                s.empty_pages += not items
                self._check_clamp()
                stop = self._stop_reason(next_cursor, dates, empty_run)
                cursor = next_cursor
                if stop:
                    # "done" goes into the same atomic checkpoint as the last part: a crash
                    # after it must not look like a crawl that never started.
                    s.stopped, s.done = stop, True
                if stop or self.sink.pending >= self.opt.part_rows or \
                        time.monotonic() - last_flush >= self.opt.flush_seconds:
                    self._flush(cursor)
                    last_flush = time.monotonic()
                if stop:
                    break
        finally:
            progress.close()
            self.client.close()
        return self._finish()

    def _stop_reason(self, next_cursor: str | None, dates: list[datetime],
                     empty_run: int) -> str | None:
        s = self.state
        if self.opt.max_items is not None and s.accepted >= self.opt.max_items:
            return f"max_items ({self.opt.max_items:,}) reached"
        if next_cursor is None:
            return "end of results (no nextCursor)"
        if self.endpoint == "images" and self.since is not None and dates and \
                max(dates) < self.since:
            return "reached --since (results are sorted Newest first)"
        if empty_run >= self.opt.max_empty_pages:
            raise ApiError(f"{empty_run} empty pages in a row that still carry a cursor; "
                           "re-run the same command later to resume")
        return None

    def _finish(self) -> Snapshot:
        s = self.state
        ensure_all_tables(self.out, s.next_part)
        observed, high = s.clamp_observed, s.clamp_above_pg13
        if high:
            clamp = f"passed: {high:,} of {observed:,} items above PG-13"
        else:
            clamp = (f"inconclusive: only {observed:,} items, none above PG-13 (fewer than the "
                     f"{self.opt.clamp_items:,} needed to call it clamped)")
            log.warning("clamp check %s", clamp)
        manifest = {
            "synthetic": False,
            "source": {
                "kind": "collect",
                "name": f"CivitAI /api/v1/{self.endpoint} crawl",
                "endpoint": self.endpoint,
                "base_url": redact(self.opt.base_url),
                "request": {"path": f"/{self.endpoint}", "params": s.request,
                            "paging": "metadata.nextCursor"},
                "authenticated": self.client.authenticated,
            },
            "window": {**s.window, "applied": "client-side on createdAt (models: earliest "
                       "version); until is exclusive"},
            "snapshot_date": s.started_at[:10],
            "collection": {
                "started_at": s.started_at,
                "finished_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
                "pages": s.pages, "empty_pages": s.empty_pages, "requests": s.requests,
                "retries": s.retries, "runs": s.runs, "items": s.accepted,
                "outside_window": s.outside_window, "stopped": s.stopped,
                "max_items": self.opt.max_items, "rate_limit_per_s": self.opt.rate,
            },
            "clamp_check": clamp,
            # what the API no longer returned on the crawl date (real-person exclusion)
            "not_measurable": limits.for_crawl(self.endpoint, s.started_at),
            "tool": TOOL,
            "duplicates_dropped": dict(sorted(s.duplicates.items())),
            "quarantine": quarantine_summary(self.out),
        }
        write_manifest(self.out, manifest)
        return load_snapshot(self.out)


def _asked(request: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in request.items() if k in ("browsingLevel", "nsfw"))


def collect(endpoint: str, out: Path | str, options: CollectOptions | None = None,
            hasher: Hasher | None = None) -> Snapshot:
    """Crawl ``endpoint`` (images or models) into the snapshot ``out``; resumes if interrupted."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines would echo every URL
    hasher = hasher or Pseudonymiser(load_or_create_key())
    crawl = _Crawl(endpoint, Path(out), options or CollectOptions(), hasher)
    return crawl.run()
