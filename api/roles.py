"""Who may do what, by role: FastAPI dependencies that let a request through when the signed-in user's role
allows it (an admin may do everything, everywhere it is bound), 403 otherwise."""


from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends

from api.tokens import current_user
from gis.access.scope import User
from gis.errors import ForbiddenError

# who may do what, by role (an admin may do everything, everywhere it is bound)
VIEWERS = ("admin", "planner", "dispatcher", "grid_member", "leader")
"""Everyone but a department, which sees only the events escalated to it."""


PLANNERS = ("admin", "planner")


DISPATCHERS = ("admin", "dispatcher")


FIELD = ("admin", "grid_member")
RECORDERS = ("admin", "grid_member", "dispatcher")
"""Who logs a visit: the member who walked, or a dispatcher entering one for them (a late or backdated one)."""


HANDLERS = ("admin", "dispatcher", "grid_member", "department", "leader")
"""Who takes steps of the loop (a leader only supervises: 督办)."""


def allow(*roles: str) -> Callable[..., Awaitable[User]]:
    """A dependency: the signed-in user, when their role is one of ``roles`` (an admin always is); else 403."""
    wanted = set(roles) | {"admin"}

    async def check(user: Annotated[User, Depends(current_user)]) -> User:
        if user.role not in wanted:
            raise ForbiddenError(f"a {user.role} may not do this; it is for: {', '.join(sorted(wanted))}")
        return user

    return check


Viewer = Annotated[User, Depends(allow(*VIEWERS))]


Planner = Annotated[User, Depends(allow(*PLANNERS))]


Dispatcher = Annotated[User, Depends(allow(*DISPATCHERS))]


FieldMember = Annotated[User, Depends(allow(*FIELD))]
Recorder = Annotated[User, Depends(allow(*RECORDERS))]


Handler = Annotated[User, Depends(allow(*HANDLERS))]


DESK = ("admin", "dispatcher", "department", "leader")
"""Who works at the console: centre staff (dispatchers), departments, leaders (who follow it and supervise)."""
Desk = Annotated[User, Depends(allow(*DESK))]


SCREEN = (*VIEWERS, "screen")
"""Who reads the big screen: everyone who views, and the screen-only accounts of the command centre's wall."""
ScreenReader = Annotated[User, Depends(allow(*SCREEN))]
