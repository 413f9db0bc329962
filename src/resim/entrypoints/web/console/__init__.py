"""The agent console: server-rendered pages under ``/console`` (issue 5).

:func:`install_console` mounts the pages and the handler that renders their
errors as pages. See docs/console.md for the page list and who may see each.
"""

from __future__ import annotations

from fastapi import FastAPI

from resim.entrypoints.web.console.pages import ConsolePageError, page_error_handler
from resim.entrypoints.web.console.routes_agents import router as agents_router
from resim.entrypoints.web.console.routes_dashboard import router as dashboard_router
from resim.entrypoints.web.console.routes_lines import router as lines_router
from resim.entrypoints.web.console.routes_loss import router as loss_router
from resim.entrypoints.web.console.routes_requests import router as requests_router


def install_console(app: FastAPI) -> None:
    app.add_exception_handler(ConsolePageError, page_error_handler)  # type: ignore[arg-type]
    app.include_router(lines_router)
    app.include_router(requests_router)
    app.include_router(loss_router)
    app.include_router(agents_router)
    app.include_router(dashboard_router)
