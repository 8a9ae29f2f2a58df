"""`card-bridge` command line: serve, simulate, status, pair."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from card_bridge import __version__


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One clear line instead of argparse's usage dump; --help still shows everything.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _origin_arg(value: str) -> str:
    from card_bridge.origins import normalize_origin

    try:
        return normalize_origin(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _port_arg(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {port}")
    return port


def _prompt(kind: str) -> Any:
    from card_bridge.pin import TerminalPinPrompt, TkPinPrompt, default_prompt

    return {"tk": TkPinPrompt, "terminal": TerminalPinPrompt}.get(kind, default_prompt)()


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="card-bridge",
        description="Mynagate card bridge: sign in with your My Number card (JPKI).",
    )
    p.add_argument("--version", action="version", version=f"card-bridge {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    # One function per command keeps each command's options together and readable.
    for add in (_add_serve, _add_simulate, _add_status, _add_pair):
        add(sub)
    return p


def _add_serve(sub: argparse._SubParsersAction) -> None:
    from card_bridge.server import DEFAULT_PORT

    s = sub.add_parser(
        "serve",
        help="run the local API for sign-in pages",
        description="Serve the loopback API on 127.0.0.1 only.",
    )
    s.add_argument(
        "--port",
        type=_port_arg,
        default=DEFAULT_PORT,
        help=f"TCP port on 127.0.0.1 (default {DEFAULT_PORT})",
    )
    s.add_argument(
        "--allow-origin",
        dest="origins",
        type=_origin_arg,
        action="append",
        required=True,
        metavar="ORIGIN",
        help="origin allowed to call the API, e.g. https://id.example.ed.jp (repeatable)",
    )
    s.add_argument("--reader", help="use only this PC/SC reader (default: first with a card)")
    s.add_argument(
        "--prompt",
        choices=("auto", "tk", "terminal"),
        default="auto",
        help="how to ask for the PIN (default: window if there is a display)",
    )


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    from card_bridge.sim import DEFAULT_VPCD_PORT

    m = sub.add_parser(
        "simulate",
        help="run a virtual JPKI card in the vpcd reader (testing)",
        description="Connect a simulated JPKI card to vsmartcard vpcd.",
    )
    m.add_argument("--cert", required=True, help="certificate (DER or PEM)")
    m.add_argument("--key", required=True, help="RSA private key (PEM, unencrypted)")
    m.add_argument("--pin", required=True, help="the card's 4-digit PIN")
    m.add_argument("--vpcd-host", default="127.0.0.1", help="vpcd host (default 127.0.0.1)")
    m.add_argument(
        "--vpcd-port",
        type=_port_arg,
        default=DEFAULT_VPCD_PORT,
        help=f"vpcd port (default {DEFAULT_VPCD_PORT} = 'Virtual PCD 00 00')",
    )
    kind = m.add_mutually_exclusive_group()
    kind.add_argument(
        "--android",
        action="store_true",
        help="behave like an Android phone token (PIN before certificate)",
    )
    kind.add_argument("--iphone", action="store_true", help="behave like an iPhone token")
    m.add_argument("--state", help="file keeping the PIN retry counter between runs")
    m.add_argument(
        "--tries",
        type=int,
        choices=(0, 1, 2, 3),
        default=None,
        help="start with this many PIN tries left (overrides --state)",
    )


def _add_status(sub: argparse._SubParsersAction) -> None:
    st = sub.add_parser("status", help="show readers and whether a card is present")
    st.add_argument("--reader", help="only this reader")
    st.add_argument("--json", action="store_true", help="machine-readable output")


def _add_pair(sub: argparse._SubParsersAction) -> None:
    pr = sub.add_parser(
        "pair",
        help="sign in on a tablet with the card on this PC",
        description="Pair with a sign-in started on another device.",
    )
    pr.add_argument("code", help="the code shown on the other device")
    pr.add_argument("--provider", required=True, help="provider URL, e.g. https://id.example")
    pr.add_argument("--reader", help="use only this PC/SC reader")
    pr.add_argument("--prompt", choices=("auto", "tk", "terminal"), default="auto")
    pr.add_argument(
        "--yes",
        action="store_true",
        help="do not ask to confirm the app, site, school and time (scripts only)",
    )


def _cmd_serve(args: argparse.Namespace) -> int:
    from card_bridge.server import BridgeConfig, make_server

    config = BridgeConfig.build(args.origins, reader=args.reader, pin_prompt=_prompt(args.prompt))
    try:
        server = make_server(config, args.port)
    except OSError as exc:
        print(
            f"card-bridge: error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 1
    st = config.status()
    print(f"card-bridge {__version__} listening on http://127.0.0.1:{server.port}", flush=True)
    print(f"  allowed origins: {', '.join(sorted(config.allowed_origins))}", flush=True)
    if st.pcsc != "ok":
        print(
            "  PC/SC unavailable (is pcscd / the Smart Card service running?); serving anyway",
            flush=True,
        )
    else:
        print(f"  readers: {', '.join(st.readers) or 'none'}", flush=True)
    print(
        f"  このパソコンで http://127.0.0.1:{server.port}/ をひらくと、タブレットの番号を入れたり、"
        "できごとを見たりできます\n"
        f"  open http://127.0.0.1:{server.port}/ on this PC to type a tablet's code and to see "
        "what happened",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from card_bridge.apdu import is_valid_pin

    try:
        from card_bridge.sim import VirtualJpkiCard, VpcdCardClient
    except ImportError as exc:  # a school PC's install has no `cryptography`
        print(
            f"card-bridge: error: the simulator (for testing) needs the Python package "
            f"{exc.name}: python -m pip install {exc.name}",
            file=sys.stderr,
        )
        return 1

    if not is_valid_pin(args.pin):
        print("card-bridge: error: --pin must be exactly 4 digits", file=sys.stderr)
        return 2
    token = "android" if args.android else "iphone" if args.iphone else "plastic"
    kwargs: dict[str, Any] = {"token": token, "state_file": args.state}
    try:
        card = VirtualJpkiCard.from_files(args.cert, args.key, args.pin, **kwargs)
    except (OSError, ValueError) as exc:
        print(f"card-bridge: error: cannot load the card: {exc}", file=sys.stderr)
        return 1
    if args.tries is not None:
        card.set_tries_left(args.tries)
    client = VpcdCardClient(card, args.vpcd_host, args.vpcd_port)
    print(
        f"simulated {token} JPKI card -> vpcd {args.vpcd_host}:{args.vpcd_port} "
        f"(tries left {card.tries_left}); Ctrl-C to remove",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        client.serve_forever()
    except KeyboardInterrupt:
        client.stop()
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from card_bridge.card import pcsc_status

    st = pcsc_status(args.reader)
    if args.json:
        print(
            json.dumps(
                {
                    "version": __version__,
                    "pcsc": st.pcsc,
                    "reader": st.reader,
                    "card": st.card,
                    "readers": st.readers,
                    "readers_with_card": st.readers_with_card,
                }
            )
        )
    else:
        print(f"PC/SC: {st.pcsc}" + (f" ({st.detail})" if st.detail else ""))
        for r in st.readers:
            print(f"  {r}: {'card present' if r in st.readers_with_card else 'no card'}")
        if st.pcsc == "ok" and not st.readers:
            print("  no reader found")
    return 0 if st.pcsc == "ok" else 1


CONFIRM_HEAD = (
    "このサインインを待っているのは、あなたのタブレットですか？\n"
    "Is this the sign-in waiting on YOUR tablet?"
)
CONFIRM_TAIL = (
    "ちがうときや、わからないときは「いいえ」にしてね。\n"
    "If it is not yours, or you are not sure, answer no."
)


def _terminal_confirm(facts: Any) -> bool:
    print(CONFIRM_HEAD)
    for line in facts.lines():
        print("  " + line)
    print(CONFIRM_TAIL)
    try:
        answer = input("続けますか / Continue? [y/N] ")
    except (EOFError, KeyboardInterrupt):
        return False
    return answer.strip().lower() in ("y", "yes", "はい")


def _tk_confirm(facts: Any) -> bool:
    from card_bridge.pin import run_tk_confirm

    return run_tk_confirm("\n".join([CONFIRM_HEAD, "", *facts.lines(), "", CONFIRM_TAIL]))


def _cmd_pair(args: argparse.Namespace) -> int:
    from card_bridge.card import PcscTransport
    from card_bridge.errors import CardError
    from card_bridge.events import EventLog, say_in_window
    from card_bridge.pair import PairingError, pair_with_provider
    from card_bridge.pin import TkPinPrompt

    prompt = _prompt(args.prompt)
    # What happened, on this terminal and (with a display) in a window like the PIN's.
    events = EventLog()
    events.listeners.append(lambda event: say_in_window(event, getattr(prompt, "tell", None)))
    # Asked by default, before the card is touched; --yes is for scripts only.
    confirm = (
        None if args.yes else _tk_confirm if isinstance(prompt, TkPinPrompt) else _terminal_confirm
    )
    try:
        pair_with_provider(
            args.provider,
            args.code,
            prompt=prompt,
            confirm=confirm,
            transport_factory=lambda: PcscTransport(args.reader),
            events=events,
        )
    except PairingError as exc:
        print(f"card-bridge: error: {exc}", file=sys.stderr)
        return 1
    except CardError as exc:
        print(f"card-bridge: {exc.message_en}\n{exc.message_ja}", file=sys.stderr)
        return 1
    print(
        "サインインできました。もとの画面にもどってね。\n"
        "Signed in. Go back to the other device."
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from card_bridge.pin import PIN_WINDOW_FLAG

    if list(sys.argv[1:] if argv is None else argv) == [PIN_WINDOW_FLAG]:
        # The PIN window's child process of a PyInstaller build (card_bridge.pin).
        from card_bridge.pin import child_main

        return child_main()
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler = {
        "serve": _cmd_serve,
        "simulate": _cmd_simulate,
        "status": _cmd_status,
        "pair": _cmd_pair,
    }[args.command]
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
