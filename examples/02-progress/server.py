#!/usr/bin/env python3
"""A long-running inference container that reports progress the NVCF way.

Python standard library only. For each request it:
  * writes NVCF-LARGE-OUTPUT-DIR/progress as {"id", "progress", "partialResponse"} (written to a
    temporary name and renamed, so the sidecar never reads half a file; the temporary name ends
    in .partial, as any file in that folder that is not yet final must, or it would be shipped);
  * writes each output as <name>.partial and renames it to its final name once complete, as
    NVIDIA's helper library and documentation prescribe;
  * answers with a small JSON body; the output files turn the answer into a 302 zip.

    PORT=8000 python3 examples/02-progress/server.py
    POST /generate  {"steps": 5, "delay": 0.5}
    GET  /v2/health/ready
"""
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def write_progress(out_dir, request_id, percent, partial):
    # Not "progress.tmp": every other name in the output folder is an output file, shipped at once,
    # and one that is gone by the end makes the sidecar upload the whole result again.
    tmp = os.path.join(out_dir, "progress.partial")
    with open(tmp, "w") as f:
        json.dump({"id": request_id, "progress": percent, "partialResponse": partial}, f)
    os.replace(tmp, os.path.join(out_dir, "progress"))


def write_output(out_dir, name, text):
    partial = os.path.join(out_dir, name + ".partial")
    with open(partial, "w") as f:
        f.write(text)
    os.replace(partial, os.path.join(out_dir, name))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/v2/health/ready" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            job = json.loads(raw or b"{}")
        except ValueError:
            return self.answer(400, {"error": "the body must be JSON"})
        steps = max(1, min(int(job.get("steps", 5)), 100))
        delay = max(0.0, min(float(job.get("delay", 0.5)), 10.0))
        # Header names arrive in any case; NVCF's helpers upper-case them.
        headers = {k.upper(): v for k, v in self.headers.items()}
        request_id = headers.get("NVCF-REQID", "local")
        out_dir = headers.get("NVCF-LARGE-OUTPUT-DIR")
        if not out_dir:
            return self.answer(400, {"error": "no NVCF-LARGE-OUTPUT-DIR header: run me behind the sidecar"})
        os.makedirs(out_dir, exist_ok=True)
        outputs = []
        for step in range(1, steps + 1):
            time.sleep(delay)
            name = "step-%03d.txt" % step
            write_output(out_dir, name, "output of step %d of %d\n" % (step, steps))
            outputs.append(name)
            write_progress(out_dir, request_id, int(step * 100 / steps), {"step": step, "of": steps, "latest": name})
        self.answer(200, {"outputs": outputs})

    def answer(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000"))), Handler)
    print("progress container listening on http://%s:%d" % server.server_address, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
