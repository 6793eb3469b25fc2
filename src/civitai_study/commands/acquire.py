"""``civitai-study acquire NAME --out DIR``: download a registered public dataset and import it."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ..fetch.registry import REGISTRY

    p = sub.add_parser(
        "acquire", help="download a registered public dataset, verify it and import it",
        description="Download a public dataset from the registry (resumable, with progress), "
                    "verify its records against the pinned count and digest, and import it into "
                    "a snapshot. Datasets: " + ", ".join(REGISTRY) + ". Hugging Face datasets "
                    "are gated: accept their terms on the hub and set HF_TOKEN.")
    p.add_argument("name", nargs="?", metavar="NAME", help="registry name (see --list)")
    p.add_argument("--out", type=Path, help="snapshot directory to write")
    p.add_argument("--list", action="store_true", help="describe the registered datasets")
    p.add_argument("--cache", type=Path, default=None,
                   help="where downloads are kept and resumed (default OUT/../.downloads/NAME)")
    p.add_argument("--url", default=None,
                   help="download the archive from this mirror instead (the pinned digest "
                        "still applies)")
    p.add_argument("--hf-endpoint", default=None,
                   help="Hugging Face endpoint (default $HF_ENDPOINT or https://huggingface.co)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def describe_registry() -> str:
    """The registry as text: one block per dataset."""
    from ..fetch.registry import REGISTRY

    blocks = []
    for d in REGISTRY.values():
        count = f"{d.expected_records:,}" if d.expected_records is not None else "not known"
        blocks.append(
            f"{d.name}: {d.title}\n  where: {d.location}\n  revision: "
            f"{d.revision or 'main (resolved and recorded at download)'}\n  licence: {d.licence}"
            f"\n  access: {d.access}\n  expected records: {count}\n  record digest: "
            f"{d.record_digest or 'not known'} ({d.digest_note})\n  importer: "
            f"{d.importer or 'none yet (download only)'}")
    return "\n\n".join(blocks)


def _run(args: argparse.Namespace) -> int:
    if args.list:
        print(describe_registry())
        return 0
    if not args.name or args.out is None:
        raise ValueError("give a dataset NAME and --out DIR (or --list to see the datasets)")
    from ..fetch import acquire_dataset

    snapshot = acquire_dataset(args.name, args.out, cache=args.cache, url=args.url,
                               hf_endpoint=args.hf_endpoint, progress=not args.no_progress)
    if snapshot is None:
        print(f"{args.name} was downloaded but no importer reads it yet; nothing was imported")
        return 0
    print(snapshot.describe())
    acquired = snapshot.manifest["acquired"]
    print(f"verified: {acquired['records']:,} records, {acquired['verification']}")
    return 0
