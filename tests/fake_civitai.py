"""A fake CivitAI ``/api/v1`` on 127.0.0.1 that misbehaves like the real one, for collector tests.

It serves a deterministic set of images and models with cursor paging and, like the real API,
returns PG only unless asked for other levels (``browsingLevel`` on images, ``nsfw=true`` on
models); in ``clamp`` mode it behaves like a restricted region and never serves above PG-13.
Faults are injected the first time a page is requested: 429 with ``Retry-After``, 503, 500, a
response slower than the client timeout, a dropped connection and malformed JSON. Some pages are
empty but carry a cursor, some repeat items of the page before, cursors alternate between
numbers and strings, and items come in the 2023, 2024-25 and 2026 shapes, a few unparseable.

Run standalone for benchmarks: ``python tests/fake_civitai.py --images 20000``.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

LEVELS = (1, 2, 4, 8, 16)
LEGACY = {1: "None", 2: "Soft", 4: "Mature", 8: "X", 16: "X"}
START = datetime(2024, 1, 1, tzinfo=UTC)
FAULTS = ("429", "503", "500", "slow", "drop", "malformed")


def make_images(n: int, bad_every: int = 0) -> list[dict[str, Any]]:
    """``n`` image items, newest first, in rotating API shapes; every ``bad_every``-th broken."""
    items = []
    for i in range(n, 0, -1):
        level = LEVELS[(i * 7) % 5]
        created = (START + timedelta(minutes=37 * i)).isoformat().replace("+00:00", "Z")
        shape = i % 3
        item: dict[str, Any] = {"id": i, "url": f"https://img.example/{i}.jpeg", "hash": f"H{i}",
                                "width": 512, "height": 768, "createdAt": created,
                                "postId": 10_000 + i, "username": f"secret_user_{i % 11}",
                                "baseModel": "Pony" if i % 2 else "SDXL 1.0"}
        if shape == 0:  # 2024-2026: legacy string + int browsingLevel, flat meta
            item.update(nsfwLevel=LEGACY[level], nsfw=level > 1, browsingLevel=level,
                        stats={"likeCount": i % 5, "heartCount": 1, "laughCount": 0,
                               "cryCount": 0, "commentCount": 2},
                        meta={"prompt": f"prompt {i}", "negativePrompt": "bad", "seed": i})
        elif shape == 1:  # integer level, wrapped meta, huge seed, null stats
            item.update(nsfwLevel=level, type="image",
                        stats={"likeCount": None, "heartCount": None},
                        meta={"id": i, "meta": {"prompt": f"prompt {i}",
                                                "seed": 12859270413054550000}})
        else:  # string postId, string seed, no stats, no username
            item.update(nsfwLevel=LEGACY[level], browsingLevel=level, postId=str(10_000 + i),
                        meta={"prompt": f"prompt {i}", "seed": "123"})
            item.pop("username")
        if bad_every and i % bad_every == 0:
            item["createdAt"] = "not a date"
        items.append(item)
    return items


def image_level(item: dict[str, Any]) -> int:
    level = item.get("browsingLevel")
    if isinstance(level, int):
        return level
    if "nsfwLevel" not in item:  # 2023 shape: only the boolean nsfw (above PG or not)
        return 2 if item.get("nsfw") else 1
    level = item["nsfwLevel"]
    return level if isinstance(level, int) else {v: k for k, v in LEGACY.items()}[level]


def make_models(n: int) -> list[dict[str, Any]]:
    """``n`` model items, newest first, alternating 2023 / 2025 / 2026 shapes."""
    items = []
    for i in range(n, 0, -1):
        mask = (1, 3, 7, 15, 31)[i % 5]
        era = i % 3
        created = (START + timedelta(hours=5 * i)).isoformat().replace("+00:00", "Z")
        stats = [{"downloadCount": i, "favoriteCount": 1, "commentCount": 0, "ratingCount": 0,
                  "rating": 0},
                 {"downloadCount": i, "favoriteCount": 0, "thumbsUpCount": 1,
                  "thumbsDownCount": 0, "commentCount": 0, "ratingCount": 0, "rating": 0,
                  "tippedAmountCount": 0},
                 {"downloadCount": None, "thumbsUpCount": 1, "thumbsDownCount": 0,
                  "commentCount": 0, "tippedAmountCount": None}][era]
        commercial = ["Sell", "{Image,RentCivit}", ["Image", "Rent"]][era]
        preview = {"id": 900_000 + i, "url": "u", "hash": f"P{i}", "width": 1, "height": 1}
        if era == 0:
            preview.update(nsfw=LEGACY[mask & -mask], meta={"prompt": "p", "seed": 1})
        else:
            preview.update(nsfwLevel=mask & -mask, hasMeta=False)
        items.append({
            "id": i, "name": f"model {i}", "type": ("LORA", "Checkpoint", "LoCon")[i % 3],
            "poi": i % 4 == 0, "nsfw": mask >= 15, "nsfwLevel": None if era == 0 else mask,
            "allowCommercialUse": commercial, "stats": stats,
            "creator": {"username": f"secret_creator_{i % 5}", "image": None},
            "tags": ["Woman", "celebrity"] if i % 2 else [],
            "modelVersions": [{"id": 50_000 + i, "modelId": i, "createdAt": created,
                               "baseModel": "SD 1.5", "trainedWords": ["w"],
                               "nsfwLevel": None if era == 0 else mask, "images": [preview]}],
        })
    return items


def model_level(item: dict[str, Any]) -> int:
    return item["nsfwLevel"] or (31 if item["nsfw"] else 1)


@dataclass
class FakeCivitai:
    """Configuration and bookkeeping of one fake server; ``start()`` serves it in a thread."""

    images: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    faults: dict[int, str] = field(default_factory=dict)   # page index -> fault
    empty_pages: set[int] = field(default_factory=set)     # pages preceded by an empty page
    duplicate_pages: set[int] = field(default_factory=set)  # pages repeating 2 earlier items
    clamp: bool = False
    slow_seconds: float = 1.5
    delay: float = 0.0
    retry_after: str = "1"
    max_limit: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)
    _done_faults: set[tuple[str, int]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> str:
        """Serve on a free port of 127.0.0.1; returns the base URL (``.../api/v1``)."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v1"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---------------------------------------------------------------- what is served
    def visible(self, endpoint: str, query: dict[str, str]) -> list[dict[str, Any]]:
        if endpoint == "images":
            level = int(query["browsingLevel"]) if "browsingLevel" in query else (
                60 if query.get("nsfw") == "true" else 1)
            pool, level_of = self.images, image_level
        else:
            level = 31 if query.get("nsfw") == "true" else 1
            pool, level_of = self.models, model_level
        if self.clamp:
            level &= 3
        return [item for item in pool if level_of(item) & level]

    def served_ids(self, endpoint: str, query: dict[str, str]) -> set[int]:
        return {item["id"] for item in self.visible(endpoint, query)}

    def fault_once(self, kind: str, page: int) -> bool:
        with self._lock:
            key = (kind, page)
            if key in self._done_faults:
                return False
            self._done_faults.add(key)
            return True


def _parse_cursor(raw: str | None) -> tuple[int, bool]:
    """(offset, whether the empty page before it was already served)."""
    if raw is None:
        return 0, False
    head, _, tail = raw.partition("|")
    return int(head), tail == "e"


def _cursor(offset: int, page: int, emptied: bool = False) -> int | str:
    """Cursors alternate between JSON numbers and ``"offset|timestamp"`` strings."""
    if emptied:
        return f"{offset}|e"
    return offset if page % 2 == 0 else f"{offset}|1712265847499"


class _Handler(BaseHTTPRequestHandler):
    fake: FakeCivitai
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep tests quiet
        return

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        fake = self.fake
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        fake.requests.append({"t": time.monotonic(), "path": url.path, "query": query,
                              "authorization": self.headers.get("Authorization")})
        prefix, _, endpoint = url.path.rpartition("/")
        if prefix != "/api/v1" or endpoint not in ("images", "models"):
            return self._json(404, {"error": f"No endpoint {url.path}"})
        if "page" in query:
            return self._json(429, {"error": "You've requested too many pages, please use "
                                             "cursors instead"})
        if "token" in query:
            return self._json(400, {"error": "tokens belong in the Authorization header"})
        if fake.delay:
            time.sleep(fake.delay)
        limit = min(int(query.get("limit", 100)), fake.max_limit)
        offset, emptied = _parse_cursor(query.get("cursor"))
        page = offset // limit
        fault = fake.faults.get(page)
        if fault and fake.fault_once(endpoint, page):
            if fault != "slow":
                return self._fault(fault)
            time.sleep(fake.slow_seconds)  # then answer, too late for the client
        if page in fake.empty_pages and not emptied and offset:
            return self._json(200, {"items": [], "metadata": {
                "nextCursor": _cursor(offset, page, emptied=True)}})
        pool = fake.visible(endpoint, query)
        items = pool[offset:offset + limit]
        if page in fake.duplicate_pages and offset >= 2:
            items = pool[offset - 2:offset] + items
        end = offset + limit
        metadata: dict[str, Any] = {}
        if end < len(pool):
            metadata["nextCursor"] = _cursor(end, page + 1)
        self._json(200, {"items": items, "metadata": metadata})

    def _fault(self, fault: str) -> None:
        fake = self.fake
        if fault == "429":
            self._json(429, {"error": "Too Many Requests"}, {"Retry-After": fake.retry_after})
        elif fault == "503":
            self._json(503, {"error": "Server busy, please retry shortly."},
                       {"Retry-After": "0"})
        elif fault == "500":
            self._json(500, {"error": "Internal Server Error"})
        elif fault == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif fault == "malformed":
            self._send(200, b'{"items": [{"id": 1, "createdAt": "2024-')
        else:
            raise ValueError(f"unknown fault {fault!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--models", type=int, default=1_000)
    args = parser.parse_args()
    fake = FakeCivitai(images=make_images(args.images), models=make_models(args.models))
    print(fake.start(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
