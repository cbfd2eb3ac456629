"""`vn hydrate`: hydrate a request offline and show (or write) the task documents each group produces.

It lives with the hydration engine, which needs nothing of the vnvs service (no Redis, no gRPC server),
so the `vn` client imports it by name. It checks and counts a request as vnapi and vnvs do.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lxml import etree

from vncommon import stdout, vnml
from vncommon.errors import ConfigError, VnError
from vncommon.xmlsafe import parse_xml
from vnvs.assembly import apply_results
from vnvs.hydration.engine import HydrationEngine
from vnvs.hydration.errors import HydrationError
from vnvs.hydration.settings import HydrationSettings
from vnvs.hydration.taskdoc import TaskDocument

EXIT_OK = 0
EXIT_HYDRATION = 1
EXIT_INPUT = 2
CLI_REQUEST_ID = "vn-hydrate"


class _InputError(Exception):
    """The request, a results file or the environment cannot be used."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vn hydrate", description="Hydrate a VNML request without services.")
    parser.add_argument("request", type=Path, help="the VNML request file")
    parser.add_argument("--group", type=int, default=None, help="show only this group (0-based)")
    parser.add_argument("--results", type=Path, default=None, help="earlier results as DIR/<group>/<task>.xml")
    parser.add_argument("--out", type=Path, default=None, help="write task documents as DIR/<group>/<task>.xml")
    return parser


def _settings(request: Path) -> HydrationSettings:
    try:
        from_env = HydrationSettings.from_env(os.environ)
    except ConfigError as exc:
        raise _InputError(str(exc)) from None
    # The request's own directory is always readable, so relative hrefs beside it work.
    roots = (request.parent.resolve(), *from_env.file_roots)
    return HydrationSettings(
        file_roots=roots,
        s3_buckets=from_env.s3_buckets,
        max_fetch_bytes=from_env.max_fetch_bytes,
        max_fetches=from_env.max_fetches,
        max_clones_per_group=from_env.max_clones_per_group,
        max_group_task_bytes=from_env.max_group_task_bytes,
        max_passes=from_env.max_passes,
    )


def _read_request(path: Path) -> etree._Element:
    """The parsed request, refused for the same reasons vnapi would refuse it."""
    try:
        root = parse_xml(path.read_bytes(), what=str(path))
        vnml.count_groups(root)
    except OSError as exc:
        raise _InputError(f"cannot read {path}: {exc.strerror}") from None
    except VnError as exc:
        raise _InputError(exc.message) from None
    return root


def _stored_results(results_dir: Path | None, group_index: int) -> list[bytes] | None:
    """Results of a group from DIR/<group>/<task>.xml ordered by task id, or None when there are none."""
    if results_dir is None:
        return None
    folder = results_dir / str(group_index)
    if not folder.is_dir():
        return None
    files = [p for p in folder.glob("*.xml") if p.stem.isdigit()]
    try:
        return [p.read_bytes() for p in sorted(files, key=lambda p: int(p.stem))]
    except OSError as exc:
        raise _InputError(f"cannot read results in {folder}: {exc.strerror}") from None


class _Screen:
    """Prints task documents until the reader goes away (`vn hydrate … | head`), then prints nothing."""

    def __init__(self) -> None:
        self.gone = False

    def show(self, group_index: int, document: TaskDocument) -> None:
        if self.gone:
            return
        title = f"=== group {group_index} ({document.group_name}) task {document.task_id} ({document.valuation_name})"
        try:
            print(title, document.xml.decode("utf-8"), sep="\n", flush=True)
        except BrokenPipeError:
            # Not an error: the reader has seen enough. The run goes on, so --out still gets every file.
            self.gone = True
            stdout.silence()


def _show(screen: _Screen, group_index: int, documents: Sequence[TaskDocument], out: Path | None) -> None:
    for document in documents:
        if out is not None:
            target = out / str(group_index) / f"{document.task_id}.xml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(document.xml)
        screen.show(group_index, document)


def _run(args: argparse.Namespace) -> None:
    root = _read_request(args.request)
    engine = HydrationEngine(_settings(args.request), CLI_REQUEST_ID, base_dir=args.request.parent.resolve())
    engine.prepare(root)
    group_count = vnml.count_groups(root)  # after hrefs, as vnvs counts the groups it runs
    if args.group is not None and not 0 <= args.group < group_count:
        raise _InputError(f"the request has {group_count} groups; --group must be 0..{group_count - 1}")
    screen = _Screen()
    last = group_count - 1 if args.group is None else args.group
    for index in range(last + 1):
        shown = args.group is None or index == args.group
        stored = _stored_results(args.results, index) if index != args.group else None
        if stored is not None and not shown:
            apply_results(root, index, stored)  # as on resume: a finished group is not hydrated again
            continue
        documents = engine.hydrate_group(root, index)
        if shown:
            _show(screen, index, documents, args.out)
        apply_results(root, index, stored if stored is not None else [d.xml for d in documents])


def main(argv: list[str] | None = None) -> int:
    """Entry point of `vn hydrate`; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        _run(args)
    except HydrationError as exc:
        print(f"vn hydrate: hydration failed: {exc.message}", file=sys.stderr)
        return EXIT_HYDRATION
    except (_InputError, VnError) as exc:
        print(f"vn hydrate: {exc}", file=sys.stderr)
        return EXIT_INPUT
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
