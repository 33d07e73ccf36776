"""The lobby page: static HTML/CSS/JS served by the room server, and the sans-IO
routes that answer for it (see :mod:`roomactors.web.routes`)."""

from .routes import CLIENT_JS_ROUTE as CLIENT_JS_ROUTE
from .routes import LobbyPageRoutes as LobbyPageRoutes

__all__ = ("CLIENT_JS_ROUTE", "LobbyPageRoutes")
