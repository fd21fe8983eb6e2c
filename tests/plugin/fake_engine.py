"""A stand-in engine speaking the `--progress json` protocol, for the process-handling tests only.

    python fake_engine.py MODE   (done | error | crash | cancel | stubborn | noisy)

The real engine (`python -m contrasat`) is exercised by the job tests; this script makes the rare endings
(a segfault, a process ignoring SIGTERM) reproducible.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time


def emit(**event) -> None:
    print(json.dumps(event), file=sys.stderr, flush=True)


def main(mode: str) -> int:
    if mode == "cancel":

        def stop(*_args) -> None:
            emit(event="cancelled", exit=130)
            sys.exit(130)

        signal.signal(signal.SIGTERM, stop)
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("a log line on stdout", flush=True)
    print("a plain warning line on stderr", file=sys.stderr, flush=True)
    emit(event="message", level="info", text="linear backscatter converted to dB")
    for i in range(1, 5):
        emit(event="progress", fraction=i / 4)
        if mode in ("cancel", "stubborn"):
            time.sleep(0.5)
    if mode in ("cancel", "stubborn"):
        time.sleep(30)
    if mode == "error":
        emit(event="error", message="S1 raster has no valid pixels", exit=2)
        return 2
    if mode == "crash":
        print("onnxruntime: about to fail", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)
    if mode == "noisy":
        print("{not json", file=sys.stderr, flush=True)
        print('{"no_event": 1}', file=sys.stderr, flush=True)
    emit(
        event="done",
        result={"outputs": {"classes": "/x/flood.tif"}, "model": "m", "provider": "CPUExecutionProvider"},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
