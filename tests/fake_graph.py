"""A fake Graph API (or bot runtime) on 127.0.0.1 for the broadcast tests: records each request, answers a script."""

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeGraph:
    """Answers POSTs from `script`, a list of (status, body), then 200 with a message id; records each request.

    `certificate` (cert file, key file) serves TLS; `keep_alive` answers in HTTP/1.1 and keeps the
    connection open, as the Graph API does; `delay` (seconds) answers that much later, so that a group of
    messages stays in flight (the worker-kill tests). A request whose body never fully arrived (its sender
    died) is not recorded: a server does nothing with half a request.
    """

    def __init__(self, certificate=None, *, keep_alive=False, delay=0.0):
        self.requests, self.script = [], []
        server = self

        class Handler(BaseHTTPRequestHandler):
            if keep_alive:
                protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if len(body) < length:
                    self.close_connection = True
                    return
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                time.sleep(delay)
                status, answer = server.script.pop(0) if server.script else (200, None)
                if answer is None:
                    answer = {"recipient_id": "x", "message_id": f"mid.{len(server.requests)}"}
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            # A group's connections open at once: a backlog of 5 (the default) would reset some of them, and a
            # reset after the request went out is rightly "unknown".
            request_queue_size = 128

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        scheme = "http"
        if certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*certificate)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"{scheme}://{self.address}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def bodies(self):
        return [json.loads(request["body"]) for request in self.requests]

    def recipients(self):
        return [body["recipient"]["id"] for body in self.bodies()]
