"""Entry point: `python tests/emulator serve --port PORT --state-dir DIR [options]`.

The emulator directory is run as a script directory, so its own path goes first on sys.path and the sibling modules
(server, identity, realism, tls, directory, graph, odata) are imported by plain name.
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _on_off(value: str) -> str:
    value = value.lower()
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError("expected 'on' or 'off'")
    return value


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return number


def _fault(value: str) -> dict:
    import faults  # after sys.path is set

    try:
        return faults.parse_fault_option(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as error:
        raise argparse.ArgumentTypeError(f"not a regular expression: {error}") from None
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python tests/emulator", description="idsync.entra tenant emulator")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the identity platform, Graph and the admin API over HTTPS")
    serve.add_argument("--port", type=int, default=8443, help="TCP port; 0 picks a free one")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--state-dir", required=True, help="where certificates, keys and endpoints.json live")
    serve.add_argument("--latency-ms", type=_non_negative, default=0, help="delay added to every Graph request")
    serve.add_argument("--throttling", type=_on_off, default="on", help="Graph identity throttling limits (on/off)")
    serve.add_argument("--replication-delay-ms", type=_non_negative, default=0,
                       help="how long a write stays invisible to reads (eventual consistency)")
    serve.add_argument("--auto-approve", action="store_true", help="approve device codes at once, as the admin user")
    serve.add_argument("--device-code-interval", type=_non_negative, default=1,
                       help="polling interval announced for device codes (Entra says 5; 1 keeps tests fast)")
    serve.add_argument("--cloud", default="azure_global",
                       choices=["azure_global", "azure_gcc", "azure_gcc_high", "azure_dod", "azure_china"],
                       help="the national cloud the tenant lives in (tenant_environment): tokens are issued, and Graph "
                            "accepts them, only for that cloud's Graph resource; other clouds' login hosts do not know "
                            "the tenant (default azure_global; azure_gcc uses the global hosts)")
    serve.add_argument("--seed", help="JSON file to load after the admin bootstrap (a dump, or {\"generate\": ...})")
    chaos = serve.add_argument_group(
        "injected faults", "Faults at a rate on Graph requests (and on each $batch item; a drop always takes the whole "
        "envelope). They stay until DELETE /_emulator/faults and come back, with the same seeds, on "
        "POST /_emulator/reset. Example: --fault 429:0.05 --fault 503:0.03 --fault drop:0.02 --fault-seed 7")
    chaos.add_argument("--fault", action="append", type=_fault, metavar="STATUS:RATE[:PHASE]",
                       help="STATUS is 429, 500, 502, 503, 504 or drop; RATE the probability per matching request "
                            "(0 < RATE <= 1). A drop closes the connection without an answer; PHASE says when: "
                            "request (nothing was done), response (the request was applied, the answer is lost) or "
                            "either (50/50, the default). Repeat for several faults")
    chaos.add_argument("--fault-seed", type=int, metavar="N",
                       help="seed the faults' random draws (rule i uses N+i) so a run repeats exactly; default: "
                            "different every run")
    chaos.add_argument("--fault-path", type=_regex, metavar="REGEX",
                       help="only Graph paths matching this regular expression get faults (e.g. '/users'); default: "
                            "every Graph path, /v1.0/$batch included")
    return parser


def main(argv=None) -> int:
    options = build_parser().parse_args(argv)
    import server  # after sys.path is set, and only for a command that needs it

    return server.serve(options)


if __name__ == "__main__":
    sys.exit(main())
