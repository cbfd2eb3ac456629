"""The `vn` command: submit VNML requests to vnapi, follow them, and fetch their results.

Errors are printed as one line (`vn: REASON: message`) on stderr, never as a traceback, and each kind of
outcome has its own exit code so scripts can tell a failed valuation from an unreachable service.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from vn.v1 import valuation_pb2
from vnclient._client import ClientSettings, ValuationClient
from vnclient.convert import event_line, event_to_dict, parse_detail, status_to_dict
from vnclient.progress import ProgressView
from vncommon import stdout
from vncommon.errors import (
    ConfigError,
    DeadlineExceeded,
    RequestCancelled,
    RequestFailed,
    RequestFinished,
    ResultNotReady,
    Unavailable,
    VnError,
)
from vncommon.state import PRIORITIES, Status, is_terminal, parse_priority, priority_to_proto, status_to_json

EXIT_OK = 0
EXIT_REQUEST_FAILED = 1  # the valuation ran and failed (submit --sync, results, watch)
EXIT_USAGE = 2  # bad command line (argparse uses 2 as well)
EXIT_REJECTED = 3  # vnapi refused the call: invalid input, unknown or expired id, reused idempotency key
EXIT_NOT_READY = 4  # still running: results not ready yet, or a sync wait timed out first
EXIT_UNAVAILABLE = 5  # vnapi did not answer, or the deadline passed
EXIT_IO = 6  # a local file could not be read or written
EXIT_CONFIG = 78  # a bad environment value (EX_CONFIG)
EXIT_INTERRUPTED = 130

Command = Callable[[ValuationClient, argparse.Namespace], Awaitable[int]]


def _error(text: str) -> None:
    print(f"vn: {text}", file=sys.stderr, flush=True)


def _write_output(data: bytes, path: str | None) -> None:
    if path and path != "-":
        Path(path).write_bytes(data)
        return
    sys.stdout.flush()
    stream = getattr(sys.stdout, "buffer", None)
    if stream is None:
        sys.stdout.write(data.decode("utf-8", "replace"))
    else:
        stream.write(data)
        stream.flush()


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def _header(raw: str) -> tuple[str, str]:
    name, sep, value = raw.partition("=")
    name = name.strip()
    if not sep or not name or " " in name:
        raise argparse.ArgumentTypeError(f"{raw!r} is not NAME=value")
    if not name.lower().startswith("x-"):
        raise argparse.ArgumentTypeError(f"{name!r} must start with X- (only X-* headers are kept)")
    return name, value


def _priority(raw: str) -> str:
    try:
        return parse_priority(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _deadline(raw: str) -> int:
    if not raw.isdigit() or int(raw) == 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a positive whole number of milliseconds")
    return int(raw)


async def cmd_submit(client: ValuationClient, args: argparse.Namespace) -> int:
    xml = _read_input(args.file)
    response = await client.submit(
        xml,
        sync=args.sync,
        idempotency_key=args.idempotency_key,
        metadata=dict(args.header),
        content_type=args.content_type,
        trace_id=args.trace_id,
        priority=priority_to_proto(args.priority),
        deadline_ms=args.deadline_ms,
        timeout=args.timeout,
    )
    if not args.sync:
        print(response.request_id, flush=True)
        return EXIT_OK
    if response.status == valuation_pb2.REQUEST_STATUS_FAILED:
        detail = json.dumps(parse_detail(response.failure_detail))
        _error(f"REQUEST_FAILED: request {response.request_id} failed: {detail}")
        return EXIT_REQUEST_FAILED
    if response.status == valuation_pb2.REQUEST_STATUS_CANCELLED:
        detail = json.dumps(parse_detail(response.failure_detail))
        _error(f"REQUEST_CANCELLED: request {response.request_id} was cancelled: {detail}")
        return EXIT_REQUEST_FAILED
    if response.timed_out or response.status != valuation_pb2.REQUEST_STATUS_SUCCEEDED:
        print(response.request_id, flush=True)
        _error(f"PENDING: request {response.request_id} is still running; follow it with `vn watch`")
        return EXIT_NOT_READY
    _write_output(response.response_xml, args.output)
    return EXIT_OK


async def cmd_status(client: ValuationClient, args: argparse.Namespace) -> int:
    response = await client.status(args.request_id, timeout=args.timeout)
    print(json.dumps(status_to_dict(response), indent=2), flush=True)
    return EXIT_OK


async def cmd_results(client: ValuationClient, args: argparse.Namespace) -> int:
    _write_output(await client.results(args.request_id, timeout=args.timeout), args.output)
    return EXIT_OK


async def cmd_cancel(client: ValuationClient, args: argparse.Namespace) -> int:
    response = await client.cancel(args.request_id, timeout=args.timeout)
    print(json.dumps({"requestId": response.request_id, "status": status_to_json(response.previous_status)}),
          flush=True)
    return EXIT_OK


async def cmd_watch(client: ValuationClient, args: argparse.Namespace) -> int:
    if args.progress if args.progress is not None else (sys.stdout.isatty() and not args.json):
        ended = await ProgressView().follow(client, args.request_id, args.timeout)
        if ended:
            return EXIT_OK if ended == Status.SUCCEEDED else EXIT_REQUEST_FAILED
        _error("UNAVAILABLE: the event stream ended before the request did")
        return EXIT_UNAVAILABLE
    async for event in client.watch(args.request_id, timeout=args.timeout):
        print(json.dumps(event_to_dict(event)) if args.json else event_line(event), flush=True)
        if is_terminal(event.status):
            return EXIT_OK if event.status == Status.SUCCEEDED else EXIT_REQUEST_FAILED
    _error("UNAVAILABLE: the event stream ended before the request did")
    return EXIT_UNAVAILABLE


def _exit_code(error: VnError) -> int:
    if isinstance(error, RequestFailed | RequestCancelled):
        return EXIT_REQUEST_FAILED
    if isinstance(error, ResultNotReady):
        return EXIT_NOT_READY
    if isinstance(error, Unavailable | DeadlineExceeded):
        return EXIT_UNAVAILABLE
    return EXIT_REJECTED


def _describe(error: VnError) -> str:
    text = f"{error.reason}: {error.message}"
    if isinstance(error, RequestFailed | RequestCancelled) and error.metadata.get("detail"):
        text += f": {json.dumps(parse_detail(error.metadata['detail']))}"
    elif isinstance(error, ResultNotReady | RequestFinished) and error.metadata.get("status"):
        text += f" (status {error.metadata['status']})"
    return text


async def _run(command: Command, args: argparse.Namespace, settings: ClientSettings) -> int:
    async with ValuationClient(settings) as client:
        return await command(client, args)


def _add_common(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--address", default=default, help="vnapi host:port (env VNAPI_ADDRESS, 127.0.0.1:50051)")
    parser.add_argument("--timeout", type=float, default=default, help="deadline of the call in seconds")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vn", description="Submit and follow vnml valuation requests.")
    _add_common(parser, None)
    common = argparse.ArgumentParser(add_help=False)
    _add_common(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = sub.add_parser("submit", parents=[common], help="submit a VNML request (prints its id)")
    submit.add_argument("file", help="the request XML, or - for stdin")
    submit.add_argument("--sync", action="store_true", help="wait for the outcome and print the response XML")
    submit.add_argument("--idempotency-key", help="the same key with the same body returns the same id")
    submit.add_argument("--header", type=_header, action="append", default=[], metavar="X-NAME=value",
                        help="metadata kept with the request (repeatable)")
    submit.add_argument("--content-type", default="application/xml")
    submit.add_argument("--trace-id", help="trace id carried through the mesh")
    submit.add_argument("-o", "--output", help="with --sync: write the response XML here")
    submit.add_argument("--priority", type=_priority, default="normal", help=f"one of {', '.join(PRIORITIES)}")
    submit.add_argument("--deadline-ms", type=_deadline, default=0, metavar="MS",
                        help="cancel the request if it has not ended this many ms after it was received")
    submit.set_defaults(handler=cmd_submit)

    cancel = sub.add_parser("cancel", parents=[common], help="cancel a request that has not ended")
    cancel.add_argument("request_id")
    cancel.set_defaults(handler=cmd_cancel)

    status = sub.add_parser("status", parents=[common], help="print a request's status as JSON")
    status.add_argument("request_id")
    status.set_defaults(handler=cmd_status)

    results = sub.add_parser("results", parents=[common], help="print (or save) a request's response XML")
    results.add_argument("request_id")
    results.add_argument("-o", "--output", help="write the response XML to this file")
    results.set_defaults(handler=cmd_results)

    watch = sub.add_parser("watch", parents=[common], help="print lifecycle events until the request ends")
    watch.add_argument("request_id")
    watch.add_argument("--json", action="store_true", help="one JSON object per line")
    watch.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="a bar per group with tasks done / expected (default: on a terminal)")
    watch.set_defaults(handler=cmd_watch)

    hydrate = sub.add_parser("hydrate", help="hydrate a VNML request locally (see `vn hydrate --help`)",
                             add_help=False)
    hydrate.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def _hydrate(argv: list[str]) -> int:
    # Imported on use, by name: the other commands need no hydration engine and start faster without it.
    from vnvs.hydration import preview

    return preview.main(argv)


def _parse(argv: list[str]) -> argparse.Namespace | int:
    try:
        return build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse reports usage errors (2) and --help (0) by exiting
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `vn` console command."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["hydrate"]:
        # Everything after the word, --help included, belongs to the hydration tool.
        return _hydrate(args_list[1:])
    parsed = _parse(args_list)
    if isinstance(parsed, int):
        return parsed
    if parsed.command == "hydrate":
        return _hydrate(parsed.args)
    try:
        settings = ClientSettings.from_env(os.environ, address=parsed.address)
        return asyncio.run(_run(parsed.handler, parsed, settings))
    except ConfigError as exc:
        _error(f"CONFIG: {exc}")
        return EXIT_CONFIG
    except VnError as exc:
        _error(_describe(exc))
        return _exit_code(exc)
    except BrokenPipeError:
        # The reader of stdout left early (`vn watch … | head -1`): it has what it wanted.
        stdout.silence()
        return EXIT_OK
    except OSError as exc:
        _error(f"IO: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        return EXIT_IO
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
