"""A real HTTP server process standing in for Slack's and Teams' webhooks, misbehaving on purpose.

    python tests/webhook_server.py --port P --record FILE [--status CODE --times N]
        [--drop-after-read N] [--stall SECONDS]

Every request it reads is appended to FILE as one JSON line (path, headers, body), before it
answers, so a test counts the posts that reached the channel from the server's side. `--status
CODE --times N` answers the first N requests with CODE (and keeps them out of the record when
CODE is not 2xx: a refused post is not in the channel); `--drop-after-read N` reads the first N
requests, records them (the channel has them) and closes the connection without an answer;
`--stall` answers late (the client times out, the post is in the channel); `--retry-after S` adds
that Retry-After header to the --status answers (a 429 that says when to come back).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--times", type=int, default=0, help="how many requests get --status (0: all)")
    parser.add_argument("--drop-after-read", type=int, default=0)
    parser.add_argument("--stall", type=float, default=0.0)
    parser.add_argument("--retry-after", default="", help="a Retry-After header on the --status answers")
    args = parser.parse_args()
    record, lock = Path(args.record), threading.Lock()
    left = {"status": args.times, "drop": args.drop_after_read}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:  # quiet: the record is the log
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8", "replace")
            with lock:
                status = args.status if (args.times == 0 or left["status"] > 0) else 200
                if args.times and left["status"] > 0:
                    left["status"] -= 1
                drop = left["drop"] > 0
                left["drop"] -= 1 if drop else 0
                if 200 <= status < 300 or drop:
                    with record.open("a", encoding="utf-8") as out:
                        out.write(json.dumps({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                              "body": json.loads(body)}) + "\n")
            if drop:
                self.close_connection = True
                self.connection.close()  # read and kept, never answered
                return
            if args.stall:
                time.sleep(args.stall)
            answer = b"ok" if 200 <= status < 300 else b"invalid_payload" if status < 500 else b"server error"
            self.send_response(status)
            if args.retry_after and not 200 <= status < 300:
                self.send_header("Retry-After", args.retry_after)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("ready", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
