"""/api/v1/auth, /api/v1/tokens, /api/v1/users: sign in and out, the caller, API tokens (shown
once, stored hashed, scoped) and account administration. Thin: every route calls app.auth.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response, status

from app import auth
from app.api.deps import API_SESSION_COOKIE, MAX_ID, SESSION_COOKIE, Admin, Caller
from app.schemas import (
    LoginIn,
    Me,
    SessionOut,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserOut,
    UserUpdate,
)
from app.settings import get_settings

router = APIRouter(prefix="/api/v1")

Id = Annotated[int, Path(ge=1, le=MAX_ID)]


def _account_error(exc: auth.AccountError) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"loc": ["body", exc.field], "msg": str(exc), "type": "value_error"}],
    )


@router.post("/auth/login", response_model=SessionOut, tags=["auth"])
def login(body: LoginIn, request: Request, response: Response) -> SessionOut:
    """Open a web session: the secret is set as an HttpOnly cookie, never in the body."""
    client = request.client.host if request.client else "unknown"
    retry_after = auth.check_login_rate(client, get_settings().login_rate_limit)
    if retry_after is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many sign-in attempts: retry later",
            headers={"Retry-After": str(int(retry_after))},
        )
    opened = auth.login(body.username, body.password)
    if opened is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid username or password")
    user, secret, expires = opened
    response.set_cookie(
        API_SESSION_COOKIE,
        secret,
        max_age=get_settings().session_ttl_s,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return SessionOut(user=UserOut.model_validate(user), expires_at=expires)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
def logout(request: Request) -> Response:
    """End the web session of this browser (no-op without one)."""
    for name in (API_SESSION_COOKIE, SESSION_COOKIE):
        auth.end_session(request.cookies.get(name, ""))
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(API_SESSION_COOKIE, path="/")
    return response


@router.get("/auth/me", response_model=Me, tags=["auth"])
def me(principal: Caller) -> Me:
    """Who the caller is and what they may do."""
    user = auth.get_user(principal.user_id)
    return Me(user=UserOut.model_validate(user), scopes=sorted(principal.scopes), via=principal.via)


@router.get("/tokens", response_model=list[TokenOut], tags=["tokens"])
def list_tokens(principal: Caller, all_users: bool = False) -> list[TokenOut]:
    """The caller's API tokens (admins: everyone's with `all_users=true`), newest first."""
    if all_users and not principal.allows("admin"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only admins can list everyone's tokens")
    owner = None if all_users else principal.user_id
    return [TokenOut.model_validate(t) for t in auth.list_tokens(owner)]


@router.post(
    "/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED, tags=["tokens"]
)
def create_token(body: TokenCreate, principal: Caller) -> TokenCreated:
    """A new API token for the caller; `token` is in this answer only, store it now."""
    if principal.via == "token" and not principal.allows("admin"):
        # A token cannot mint tokens (a leaked token must not outlive its revocation).
        raise HTTPException(status.HTTP_403_FORBIDDEN, "sign in to create tokens")
    try:
        secret, token = auth.create_token(principal, body.name, body.scopes, body.expires_in_days)
    except auth.AccountError as exc:
        raise _account_error(exc) from exc
    return TokenCreated(**TokenOut.model_validate(token).model_dump(), token=secret)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["tokens"])
def revoke_token(token_id: Id, principal: Caller) -> Response:
    """Revoke a token (yours; admins: anyone's). It stops working at once."""
    owner = None if principal.allows("admin") else principal.user_id
    try:
        auth.revoke_token(token_id, owner)
    except auth.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"token {token_id} not found") from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users", response_model=list[UserOut], tags=["users"])
def list_users(_: Admin) -> list[UserOut]:
    """Every account (admins only)."""
    return [UserOut.model_validate(u) for u in auth.list_users()]


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED, tags=["users"])
def create_user(body: UserCreate, _: Admin) -> UserOut:
    """Create an account (admins only)."""
    try:
        return UserOut.model_validate(auth.create_user(body.username, body.password, body.role))
    except auth.AccountError as exc:
        raise _account_error(exc) from exc


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"])
def update_user(user_id: Id, body: UserUpdate, principal: Admin) -> UserOut:
    """Change an account's role, password or active flag (admins only)."""
    try:
        user = auth.update_user(
            user_id, body.role, body.is_active, body.password, actor_id=principal.user_id
        )
    except auth.SelfLockout as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except auth.AccountError as exc:
        raise _account_error(exc) from exc
    except auth.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {user_id} not found") from exc
    return UserOut.model_validate(user)
