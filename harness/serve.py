"""``dfp serve RUN_DIR``: the forecast web page, its API and the run's dashboards, locally.

The API is :mod:`pipeline.serving.handler`, the code AWS runs behind API Gateway + Lambda, called
with API Gateway proxy events over the world's DynamoDB and Athena. The run's enriched forecast
(``RUN_DIR/forecast/enriched/``) is loaded into a fresh local world, so serving needs no rerun.

Routes: ``/`` the page (search by id or name, and for a forecast by store a location: every
store, a region or one store; chart and numbers); ``/api/forecast/{id}[?store_id=|?region=]``,
``/api/products?q=`` and ``/api/stores`` the API; ``/report`` the run report;
``/dashboard/forecasts``, ``/dashboard/outliers``, ``/dashboard/alerts`` its sections. The server
binds to 127.0.0.1 unless told otherwise; errors are logged and answered with a generic message,
never a traceback.

Limits, so that a slow or hostile client cannot hold the server: a bounded pool of worker threads
(:data:`WORKERS`) with a bounded backlog (connections beyond it are closed at once), a socket
timeout (:data:`SOCKET_TIMEOUT`) on every connection, request lines of at most
:data:`MAX_REQUEST_LINE` bytes (414 beyond), and only ``GET`` and ``HEAD`` (a request body is
refused with 413). One request per connection (HTTP/1.0).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from deploy.stack import load_stack
from emulation import World
from harness.charts import charts_js, plotly_js
from harness.provision import provision
from harness.report import anomaly_section, forecast_section, page, render_report
from harness.run.layout import RunDir
from pipeline.contracts.local_guard import is_local_host, names_this_machine
from pipeline.serving.handler import Settings, make_handler

logger = logging.getLogger(__name__)

WORKERS = 8
BACKLOG = 32  # accepted connections waiting for a worker; more are closed at once
SOCKET_TIMEOUT = 10.0  # seconds a connection may stay silent
MAX_REQUEST_LINE = 8192

_PAGE = """
<h1>Demand forecast</h1>
<p class="muted">Find a product by id or name; its forecast comes from the forecast API.</p>
<form id="search-form"><input id="search" type="search" placeholder="e.g. P00001 or a name"
 autocomplete="off" aria-label="product id or name"> <button type="submit">Search</button></form>
<p id="where" hidden><label>Location <select id="location"
 aria-label="location"><option value="">All stores</option></select></label></p>
<ul id="results"></ul>
<p id="message" class="muted" role="status"></p>
<div id="chart" class="chart" style="height:420px"></div>
<table id="numbers"></table>
<p class="muted"><a href="/report">Run report</a> · <a href="/dashboard/forecasts">forecasts</a>
 · <a href="/dashboard/outliers">outliers</a> · <a href="/dashboard/alerts">alerts</a></p>
<script>
const config = {displaylogo: false, responsive: true};
function text(tag, value) { const el = document.createElement(tag); el.textContent = value;
  return el; }
let shown = null;
function option(value, label) { const o = text("option", label); o.value = value; return o; }
async function loadStores() {
  // A forecast by store: pick every store, a region or one store.
  const response = await fetch("/api/stores");
  if (!response.ok) { return; }
  const stores = (await response.json()).stores || [];
  if (!stores.length) { return; }
  const pick = document.getElementById("location");
  [...new Set(stores.map((s) => s.region).filter((r) => r))].sort().forEach((r) =>
    pick.appendChild(option("region=" + encodeURIComponent(r), "Region " + r)));
  stores.forEach((s) => pick.appendChild(option("store_id=" + encodeURIComponent(s.store_id),
    `Store ${s.store_id}${s.region ? " · " + s.region : ""}`)));
  pick.addEventListener("change", () => { if (shown) { show(shown); } });
  document.getElementById("where").hidden = false;
}
loadStores();
async function show(id) {
  shown = id;
  const message = document.getElementById("message");
  message.textContent = "Loading " + id + "…";
  const where = document.getElementById("location").value;
  const response = await fetch("/api/forecast/" + encodeURIComponent(id) +
                               (where ? "?" + where : ""));
  const body = await response.json();
  if (!response.ok) { message.textContent = body.error || "request failed"; return; }
  const place = body.store_id ? ` · store ${body.store_id}` : body.region
    ? ` · region ${body.region} (${body.stores} stores)`
    : body.stores ? ` · all ${body.stores} stores` : "";
  body.location = place.slice(3);
  message.textContent = `${body.item_id} · ${body.name || ""} · ${body.category || ""}${place} · ` +
    `forecast version ${body.version} (from ${body.source})`;
  const figure = dfpForecastFigure(body);
  Plotly.react("chart", figure.data, figure.layout, config);
  const table = document.getElementById("numbers");
  table.replaceChildren();
  const head = document.createElement("tr");
  ["date", "P10", "P50", "P90", "promotion"].forEach((h) => head.appendChild(text("th", h)));
  table.appendChild(head);
  body.forecast.forEach((row) => {
    const tr = document.createElement("tr");
    tr.appendChild(text("td", row.date));
    [row.p10, row.p50, row.p90].forEach((v) => {
      const td = text("td", v === null ? "—" : v.toFixed(2)); td.className = "num";
      tr.appendChild(td); });
    tr.appendChild(text("td", row.promotion ? "yes" : ""));
    table.appendChild(tr);
  });
}
document.getElementById("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const q = document.getElementById("search").value.trim();
  const message = document.getElementById("message");
  const list = document.getElementById("results");
  list.replaceChildren();
  if (!q) { return; }
  const response = await fetch("/api/products?q=" + encodeURIComponent(q));
  const body = await response.json();
  if (!response.ok) { message.textContent = body.error || "request failed"; return; }
  if (!body.items.length) { message.textContent = "No product matches " + q; return; }
  message.textContent = body.items.length + " found";
  body.items.forEach((item) => {
    const li = document.createElement("li");
    const button = text("button", `${item.item_id} · ${item.name || ""}`);
    button.className = "result"; button.dataset.item = item.item_id;
    button.addEventListener("click", () => show(item.item_id));
    li.appendChild(button); list.appendChild(li);
  });
});
</script>
"""


class ForecastSite:
    """The world-side state of the site: stack, data, the API handler, the run's summary."""

    def __init__(self, world: World, run_dir: Path) -> None:
        self.world = world
        self.run_dir = run_dir
        summary_path = RunDir(run_dir).summary
        if not summary_path.is_file():
            raise FileNotFoundError(f"{summary_path}: missing; is {run_dir} a run directory?")
        self.summary = json.loads(summary_path.read_text())
        enriched = RunDir(run_dir).enriched
        files = sorted(enriched.rglob("*.parquet")) if enriched.is_dir() else []
        if not files:
            raise FileNotFoundError(
                f"{enriched}: no enriched forecast; run the scenario through the enrich stage"
            )
        stack = load_stack()
        self.names = provision(world, stack)
        s3 = world.client("s3")
        bucket = self.names.bucket(stack.glue.tables["forecast_enriched"].bucket)
        prefix = stack.glue.tables["forecast_enriched"].prefix
        for file in files:
            key = prefix + file.relative_to(enriched).as_posix()
            s3.put_object(Bucket=bucket, Key=key, Body=file.read_bytes())
        self.api = make_handler(
            world.client("dynamodb"),
            world.client("athena"),
            Settings.from_environment(self.names.api_environment()),
        )

    def dashboard(self, name: str) -> str | None:
        sections = {
            "forecasts": ("Forecasts", lambda: forecast_section(self.summary, self.run_dir)),
            "outliers": ("Outliers", lambda: anomaly_section(self.summary, self.run_dir)),
            "alerts": ("Alerts", lambda: anomaly_section(self.summary, self.run_dir)),
        }
        if name not in sections:
            return None
        title, build = sections[name]
        return page(f"dfp · {title}", f"<h1>{title}</h1>{build()}", charts=True)


def _handler_class(site: ForecastSite, socket_timeout: float,
                   only_local_names: bool = True) -> type[BaseHTTPRequestHandler]:  # fmt: skip
    """``only_local_names``: answer only requests whose Host names this machine (a server bound
    to loopback; one the user opened to the network with ``--host`` is reached by other names)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "dfp-serve"
        sys_version = ""
        timeout = socket_timeout  # applied to each connection's socket by StreamRequestHandler

        def parse_request(self) -> bool:
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self.requestline = ""
                self.request_version = "HTTP/1.0"
                self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return False
            if not super().parse_request():
                return False
            # A page whose name was rebound to 127.0.0.1 would read this site as its own: it
            # sends its own name as the Host. Only this machine's names are answered.
            named = self.headers.get("Host") if only_local_names else None
            if named is not None and not names_this_machine(named):
                self.send_error(HTTPStatus.MISDIRECTED_REQUEST,
                                "Host is not this machine (127.0.0.1, localhost; more in "
                                "DFP_LOCAL_HOSTS)")  # fmt: skip
                return False
            length = self.headers.get("Content-Length", "0").strip() or "0"
            if length != "0" or self.headers.get("Transfer-Encoding"):
                self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "no request body accepted")
                return False
            return True

        def send_error(self, code: int, message: str | None = None, explain: str | None = None):
            # The base class's HTML error page echoes parts of the request; answer in JSON.
            self.close_connection = True
            try:
                status = HTTPStatus(code)
                text = (message or status.phrase)[:200]
            except ValueError:
                text = (message or "error")[:200]
            body = json.dumps({"error": text}).encode()
            self.send_response(code, text)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.info("%s %s", self.address_string(), format % args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            try:
                self._route()
            except Exception:
                logger.exception("GET %s failed", self.path)
                self._send(
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    json.dumps(
                        {"error": "internal error; the server log has the details"}
                    ).encode(),
                    "application/json",
                )

        def _route(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            path = url.path
            if path in ("/", "/index.html"):
                html = page("dfp · forecast", _PAGE, charts=False).replace(
                    "</head>",
                    '<script src="/static/plotly.min.js"></script>'
                    '<script src="/static/charts.js"></script></head>',
                    1,
                )
                self._send(HTTPStatus.OK, html.encode(), "text/html; charset=utf-8")
            elif path == "/static/plotly.min.js":
                self._send(HTTPStatus.OK, plotly_js().encode(), "text/javascript")
            elif path == "/static/charts.js":
                self._send(HTTPStatus.OK, charts_js().encode(), "text/javascript")
            elif path.startswith("/api/"):
                query = dict(urllib.parse.parse_qsl(url.query))
                event = {
                    "httpMethod": "GET",
                    "path": urllib.parse.unquote(path[len("/api") :]),
                    "queryStringParameters": query or None,
                }
                response = site.api(event, None)
                self._send(
                    response["statusCode"],
                    response["body"].encode(),
                    response["headers"]["Content-Type"],
                )
            elif path == "/report":
                html = render_report(site.summary, site.run_dir)
                self._send(HTTPStatus.OK, html.encode(), "text/html; charset=utf-8")
            elif path.startswith("/dashboard/") and (
                html := site.dashboard(path.rsplit("/", 1)[-1])
            ):
                self._send(HTTPStatus.OK, html.encode(), "text/html; charset=utf-8")
            else:
                self._send(
                    HTTPStatus.NOT_FOUND,
                    json.dumps({"error": "not found"}).encode(),
                    "application/json",
                )

    return Handler


class BoundedHTTPServer(HTTPServer):
    """An HTTP server whose requests run on a fixed pool of threads with a bounded backlog.

    The standard ``ThreadingHTTPServer`` starts a thread per connection without limit, so a few
    hundred idle connections hold a few hundred threads; here they hold at most ``workers``
    threads (for at most the socket timeout each), and connections beyond ``backlog`` are closed.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64  # the kernel's accept queue; the pool's backlog is the real bound

    def __init__(self, address, handler, *, workers: int = WORKERS, backlog: int = BACKLOG):
        if ":" in str(address[0]):
            self.address_family = socket.AF_INET6
        # before the bind: a bind that fails closes the server, which shuts the pool down
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dfp-serve")
        self.slots = threading.BoundedSemaphore(workers + backlog)
        super().__init__(address, handler)
        self.refused = 0

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):
            self.refused += 1
            if self.refused in (1, 10, 100) or self.refused % 1000 == 0:  # not a line per attack
                logger.warning("busy: closed %d connections so far", self.refused)
            self.shutdown_request(request)
            return
        self.pool.submit(self._work, request, client_address)

    def _work(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self.slots.release()

    def handle_error(self, request, client_address) -> None:
        logger.debug("connection from %s ended with an error", client_address[0], exc_info=True)

    def server_close(self) -> None:
        super().server_close()
        self.pool.shutdown(wait=False, cancel_futures=True)


class ForecastServer:
    """The HTTP server around a :class:`ForecastSite`, in a background thread."""

    def __init__(
        self,
        site: ForecastSite,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        socket_timeout: float = SOCKET_TIMEOUT,
        workers: int = WORKERS,
        backlog: int = BACKLOG,
        only_local_names: bool | None = None,
    ) -> None:
        self.site = site
        if only_local_names is None:  # a server opened to the network is reached by any name
            only_local_names = is_local_host(host)
        self.httpd = BoundedHTTPServer(
            (host, port), _handler_class(site, socket_timeout, only_local_names),
            workers=workers, backlog=backlog,
        )  # fmt: skip
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ForecastServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
