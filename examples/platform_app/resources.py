"""Resources of a project: provisioned, watched, their status changed, deleted.

A resource starts ``PROCESSING`` (being provisioned); its page shows its status
and moves it on (``ACTIVE``, ``FAILED``, ``ARCHIVED``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hutch.plugins.platform import MembershipRole, Resource, ResourceStatus, ResourceType, User

from .projects import project_for
from .projects import show as show_project
from .web import (
    PAGE,
    SEE,
    WORK,
    PageNotFound,
    Platform,
    Posted,
    SignedIn,
    Site,
    act,
    checked_id,
    choice,
    field,
    membership_role,
    render,
)

router = APIRouter()


@router.post("/projects/{project_id}/resources")
def provision(
    request: Request,
    project_id: str,
    data: Posted,
    user: SignedIn,
    p: Site,
) -> Response:
    def provision() -> str:
        project = project_for(p, user, project_id, WORK)
        resource = p.repos.resources.create(
            name=field(data, "name"),
            project_id=project.id,
            type=choice(data, "type", ResourceType),
            status=ResourceStatus.PROCESSING,
        )
        return f"/resources/{resource.id}"

    return act(p, provision, lambda m, s: show_project(request, p, user, project_id, m, s))


@router.api_route("/resources/{resource_id}", methods=PAGE)
def page(
    request: Request,
    resource_id: str,
    user: SignedIn,
    p: Site,
) -> Response:
    return show(request, p, user, resource_id)


@router.post("/resources/{resource_id}/status")
def change_status(
    request: Request,
    resource_id: str,
    data: Posted,
    user: SignedIn,
    p: Site,
) -> Response:
    def change() -> str:
        resource = resource_for(p, user, resource_id, WORK)
        p.repos.resources.update(resource.id, status=choice(data, "status", ResourceStatus))
        return f"/resources/{resource.id}"

    return act(p, change, lambda m, s: show(request, p, user, resource_id, m, s))


@router.post("/resources/{resource_id}/delete")
def delete(
    request: Request,
    resource_id: str,
    _: Posted,
    user: SignedIn,
    p: Site,
) -> Response:
    def delete() -> str:
        resource = resource_for(p, user, resource_id, WORK)
        p.repos.resources.delete(resource.id)
        return f"/projects/{resource.project_id}"

    return act(p, delete, lambda m, s: show(request, p, user, resource_id, m, s))


def show(
    request: Request,
    p: Platform,
    user: User,
    resource_id: str,
    error: str | None = None,
    status: int = 200,
) -> Response:
    resource = resource_for(p, user, resource_id)
    project = p.repos.projects.get(resource.project_id)
    role = membership_role(p, user, project.organisation_id) if project else None
    return render(
        request,
        "resource.html",
        user=user,
        resource=resource,
        project=project,
        statuses=list(ResourceStatus),
        may_work=role in WORK,
        error=error,
        status=status,
    )


def resource_for(
    p: Platform, user: User, resource_id: str, may: tuple[MembershipRole, ...] = SEE
) -> Resource:
    """The resource, if the user is a member of its project's organisation with a role in
    ``may``."""
    resource = p.repos.resources.get(checked_id(resource_id))
    if resource is None:
        raise PageNotFound()
    project_for(p, user, resource.project_id, may)
    return resource
