"""A real SMTP server process that misbehaves on purpose, for the delivery fault tests.

    python tests/smtp_fault_server.py --port P --record FILE [--refuse ADDR] [--temp-refuse ADDR]
        [--stall-data SECONDS] [--drop-before-data N] [--drop-in-data N]

Every message it accepts is appended to FILE as one JSON line (recipients, Message-ID), so a
test counts the copies each recipient got from the server's side, not from the client's word.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
from email import message_from_bytes
from pathlib import Path

from aiosmtpd.controller import Controller


class Faulty:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.record = Path(args.record)
        self.temp_left = args.temp_times
        self.drops_before = args.drop_before_data
        self.drops_in = args.drop_in_data

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook
        if self.drops_before > 0:
            self.drops_before -= 1
            server.transport.close()  # the server goes away before the message was sent
            return "421 4.3.2 going away"
        if address in self.args.refuse:
            return "550 5.1.1 mailbox unavailable"
        if address in self.args.temp_refuse and self.temp_left > 0:
            self.temp_left -= 1
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.drops_in > 0:
            self.drops_in -= 1
            server.transport.close()  # lost during DATA: nothing kept, the client cannot know
            return "421 4.3.2 going away"
        msg = message_from_bytes(envelope.content)
        with self.record.open("a", encoding="utf-8") as out:  # kept: the recipients will get it
            out.write(json.dumps({"rcpt": list(envelope.rcpt_tos), "message_id": msg["Message-ID"],
                                  "subject": msg["Subject"],
                                  "data": envelope.content.decode("utf-8", "replace")}) + "\n")
        if self.args.stall_data:
            # the message is kept, but the answer comes late: a client that times out cannot know
            await asyncio.sleep(self.args.stall_data)
        return "250 2.0.0 accepted"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--refuse", action="append", default=[])
    parser.add_argument("--temp-refuse", action="append", default=[])
    parser.add_argument("--temp-times", type=int, default=1)
    parser.add_argument("--stall-data", type=float, default=0.0)
    parser.add_argument("--drop-before-data", type=int, default=0)
    parser.add_argument("--drop-in-data", type=int, default=0)
    args = parser.parse_args()
    controller = Controller(Faulty(args), hostname="127.0.0.1", port=args.port)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait(timeout=600)  # bounded: a forgotten server stops by itself
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
