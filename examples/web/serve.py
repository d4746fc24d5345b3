"""Tiny static server for the edgecnn web example (stdlib only).

Sends COOP/COEP so the page is cross-origin isolated (needed for wasm threads / SharedArrayBuffer)
and correct MIME types for .mjs/.wasm/.tflite/.onnx.  Binds 127.0.0.1.

    python serve.py ROOT [--port N]          # prints the URL, serves until Ctrl-C

    from serve import serve                  # e.g. in a pytest fixture
    url, stop = serve(root)                  # url = "http://127.0.0.1:PORT/"
    ...
    stop()
"""

import argparse
import contextlib
import functools
import http.server
import sys
import threading

MIME = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".tflite": "application/octet-stream",
    ".onnx": "application/octet-stream",
    ".png": "image/png",
}


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME}
    verbose = False

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, fmt, *args):
        if self.verbose:
            super().log_message(fmt, *args)


def serve(root, port=0, verbose=False):
    """Serve `root` on 127.0.0.1:port (0 = any free port) in a thread. Returns (url, stop)."""
    handler = functools.partial(type("H", (Handler,), {"verbose": verbose}), directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def stop():
        httpd.shutdown()
        httpd.server_close()
        thread.join()

    return f"http://127.0.0.1:{httpd.server_address[1]}/", stop


@contextlib.contextmanager
def serving(root, port=0):
    """Context-manager form: `with serving(root) as url: ...`."""
    url, stop = serve(root, port)
    try:
        yield url
    finally:
        stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    url, stop = serve(args.root, args.port, args.verbose)
    print(url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
