#!/usr/bin/env python3
"""Loads a local HTML file in headless chromium and says what the page did, as JSON on stdout:
console errors, uncaught exceptions, every network request other than the page itself, and
whether the load finished; with --screenshot, saves a PNG of the page as rendered.

It speaks the DevTools protocol over a pipe (--remote-debugging-pipe: messages are JSON
separated by NUL bytes on file descriptors 3 and 4), so it needs nothing but Python's standard
library. Used by the compliance report's test (tests/it/compliance.rs).

    browser-check.py CHROMIUM FILE.html [--screenshot OUT.png] [--width 1280] [--height 4000]
"""
import argparse
import base64
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, binary, width, height):
        # chromium reads commands from its fd 3 and writes replies to its fd 4.
        to_child_read, self.to_child = os.pipe()
        self.from_child, from_child_write = os.pipe()
        self.profile = tempfile.TemporaryDirectory(prefix="sts-audit-chromium-")
        args = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--window-size={width},{height}",
            f"--user-data-dir={self.profile.name}", "about:blank",
        ]

        def wire_fds():
            # Through fresh descriptors first: a pipe end may already be 3 or 4, and
            # dup2 onto itself would keep its close-on-exec flag.
            read_end, write_end = os.dup(to_child_read), os.dup(from_child_write)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            args, preexec_fn=wire_fds, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_child_read)
        os.close(from_child_write)
        self.buffer = b""
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, session=None):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_child, json.dumps(message).encode() + b"\0")
        return self.next_id

    def read(self, deadline):
        """The next message, or None at the deadline."""
        import select
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.from_child], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, params=None, session=None, timeout=30):
        wanted = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self.read(deadline)
            if message is None:
                raise RuntimeError(f"no reply to {method} within {timeout} s")
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method, timeout):
        """Collects events until `method` arrives (True) or the timeout (False)."""
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return True
        while True:
            message = self.read(deadline)
            if message is None:
                return False
            self.events.append(message)
            if message.get("method") == method:
                return True

    def close(self):
        try:
            self.send("Browser.close")
            self.process.wait(timeout=10)
        except Exception:
            self.process.kill()
            self.process.wait()
        self.profile.cleanup()


def save_tiles(browser, session, screenshot, width, page_height, tile_height):
    """The page again as pieces of `tile_height` pixels (OUT-1.png, ...), easier to look at."""
    stem = pathlib.Path(screenshot).with_suffix("")
    for number, top in enumerate(range(0, int(page_height), tile_height), start=1):
        shot = browser.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": top, "width": width,
                     "height": min(tile_height, page_height - top), "scale": 1},
        }, session=session)
        pathlib.Path(f"{stem}-{number}.png").write_bytes(base64.b64decode(shot["data"]))


def check(binary, page, screenshot, width, height, tile_height=None, print_media=False):
    url = pathlib.Path(page).resolve().as_uri()
    browser = Browser(binary, width, height)
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call(
            "Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.call(f"{domain}.enable", session=session)
        if print_media:
            browser.call("Emulation.setEmulatedMedia", {"media": "print"}, session=session)
        browser.call("Page.navigate", {"url": url}, session=session)
        loaded = browser.wait_for("Page.loadEventFired", timeout=30)
        # Late requests and errors (timers, lazy images) get a moment to show up.
        browser.wait_for("never", timeout=1.0)
        result = summarise(browser.events, url, loaded)
        if screenshot:
            metrics = browser.call("Page.getLayoutMetrics", session=session)
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            shot = browser.call("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": min(size["height"], 16000),
                         "scale": 1},
            }, session=session)
            pathlib.Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
            result["page_height"] = size["height"]
            if tile_height:
                save_tiles(browser, session, screenshot, width, size["height"], tile_height)
        return result
    finally:
        browser.close()


def summarise(events, url, loaded):
    console_errors, exceptions, requests, failed = [], [], [], []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            console_errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                           for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            console_errors.append(params["entry"].get("text", ""))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exceptions.append(details.get("exception", {}).get("description") or details.get("text", ""))
        elif method == "Network.requestWillBeSent":
            requested = params["request"]["url"]
            if requested != url:
                requests.append(requested)
        elif method == "Network.loadingFailed":
            failed.append(params.get("errorText", ""))
    return {"loaded": loaded, "console_errors": console_errors, "exceptions": exceptions,
            "requests": requests, "failed_loads": failed}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("chromium")
    parser.add_argument("page")
    parser.add_argument("--screenshot")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--tiles", type=int, metavar="HEIGHT",
                        help="also save the screenshot in pieces of this height")
    parser.add_argument("--print", action="store_true", dest="print_media",
                        help="render with the print style sheet (@media print)")
    args = parser.parse_args()
    result = check(args.chromium, args.page, args.screenshot, args.width, args.height,
                   args.tiles, args.print_media)
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
