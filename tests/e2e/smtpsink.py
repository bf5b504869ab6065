"""A real SMTP server for tests, in its own process: aiosmtpd on 127.0.0.1 into a maildir.

``python tests/e2e/smtpsink.py PORT MAILDIR [--die-after K]`` accepts every message and
stores it in the maildir (``new/``, one file a message, written before the 250). With
``--die-after K`` it kills its own process (``os._exit``) when message K+1 arrives, after
its DATA and before any reply: a server that dies in the middle of a batch. It prints
``ready`` once it listens.
"""

from __future__ import annotations

import argparse
import mailbox
import os
import sys
import time
from typing import Any

from aiosmtpd.controller import Controller


class MaildirHandler:
    def __init__(self, folder: str, die_after: int | None) -> None:
        self.box = mailbox.Maildir(folder, create=True)
        self.die_after = die_after
        self.accepted = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.die_after is not None and self.accepted >= self.die_after:
            os._exit(17)  # mid-batch, before the reply to this message
        self.box.add(envelope.original_content)
        self.accepted += 1
        return "250 OK stored"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("maildir")
    parser.add_argument("--die-after", type=int, default=None)
    args = parser.parse_args()
    controller = Controller(MaildirHandler(args.maildir, args.die_after),
                            hostname="127.0.0.1", port=args.port)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
