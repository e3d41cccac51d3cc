"""The baseline for admission throughput: an endpoint that decodes the AdmissionReview and allows it, served
exactly as ``wukong-webhook serve`` serves (same gunicorn worker, TLS, request threads, body handling).

    python bench/bare_server.py PORT CERT KEY THREADS
"""

from __future__ import annotations

import json
import sys

from flask import Flask, Response, request

from webhook.server import ServeOptions, WebhookServer


def app() -> Flask:
    bare = Flask("bare")

    @bare.post("/bare")
    def allow() -> Response:
        review = json.loads(request.get_data(cache=False))
        answer = {"uid": review["request"]["uid"], "allowed": True}
        body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": answer}
        return Response(json.dumps(body), mimetype="application/json")

    @bare.get("/readyz")
    def ready() -> str:
        return "ok"

    return bare


if __name__ == "__main__":
    port, cert, key, threads = sys.argv[1:5]
    options = ServeOptions(bind=f"127.0.0.1:{port}", cert_file=cert, key_file=key, threads=int(threads))
    WebhookServer(app, options).run()
