"""One error taxonomy for the whole service.

Every error a user can cause or fix is one of these. Each subclasses a built-in so plain Python code can still
catch it naturally, and the API maps each class to one HTTP status in one table (``api.errors``); the CLI
prints the message and exits non-zero. Messages say what to fix; internals stay in the logs.
"""

from __future__ import annotations


class GridpatrolError(Exception):
    """Base of every error a user of gridpatrol can act on."""


class InputError(GridpatrolError, ValueError):
    """The input is malformed or out of range (HTTP 422, CLI exit 2)."""


class BadRequestError(InputError):
    """A request the protocol itself rules out (HTTP 400): a tile outside its zoom's grid, an OGC API parameter
    that does not parse. The standards that gridpatrol follows there (OGC API, the XYZ tile scheme) say 400."""


class OsmFileError(InputError):
    """An OSM file is missing, truncated, not OSM, or holds nothing importable."""


class UnknownCityError(InputError, LookupError):
    """A city name that the registry in :mod:`gis.geo.cities` does not know."""


class CrsError(InputError):
    """A GeoDataFrame without a CRS, or with a CRS other than the one required."""


class NotFoundError(GridpatrolError, LookupError):
    """A unit, grid, building or other record that does not exist (HTTP 404)."""


class DatabaseUnavailableError(GridpatrolError, ConnectionError):
    """The database cannot be reached or started (HTTP 503, CLI exit 3)."""


class ConflictError(GridpatrolError):
    """The change was made against a stale version, or contradicts the current state (HTTP 409)."""


class ForbiddenError(GridpatrolError, PermissionError):
    """The actor's role may not take this step (HTTP 403)."""


class PayloadTooLargeError(InputError):
    """An upload larger than the service accepts (HTTP 413)."""


class UnauthorizedError(GridpatrolError):
    """No token, a wrong or expired one, or a wrong password (HTTP 401): sign in (again)."""


class RateLimitedError(GridpatrolError):
    """A client sending faster than it may (HTTP 429); ``retry_after`` says when to try again, in seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
