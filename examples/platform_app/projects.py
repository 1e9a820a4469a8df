"""Projects of an organisation: their status, and the resources provisioned in them.

Deleting a project deletes its resources and their files with it (the
platform's ``cascade`` policy), in the one transaction of the form. Members of
the organisation (not viewers) work on its projects.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hutch.plugins.platform import (
    MembershipRole,
    Project,
    ProjectStatus,
    ResourceStatus,
    ResourceType,
    User,
)

from .organisations import show as show_organisation
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
    organisation_for,
    render,
)

router = APIRouter()


@router.post("/organisations/{organisation_id}/projects")
def create(
    request: Request,
    organisation_id: str,
    data: Posted,
    user: SignedIn,
    p: Site,
) -> Response:
    def create() -> str:
        organisation = organisation_for(p, user, organisation_id, WORK)
        project = p.repos.projects.create(name=field(data, "name"), organisation_id=organisation.id)
        return f"/projects/{project.id}"

    return act(p, create, lambda m, s: show_organisation(request, p, user, organisation_id, m, s))


@router.api_route("/projects/{project_id}", methods=PAGE)
def page(
    request: Request,
    project_id: str,
    user: SignedIn,
    p: Site,
) -> Response:
    return show(request, p, user, project_id)


@router.post("/projects/{project_id}/status")
def change_status(
    request: Request,
    project_id: str,
    data: Posted,
    user: SignedIn,
    p: Site,
) -> Response:
    def change() -> str:
        project = project_for(p, user, project_id, WORK)
        p.repos.projects.update(project.id, status=choice(data, "status", ProjectStatus))
        return f"/projects/{project.id}"

    return act(p, change, lambda m, s: show(request, p, user, project_id, m, s))


@router.post("/projects/{project_id}/delete")
def delete(
    request: Request,
    project_id: str,
    _: Posted,
    user: SignedIn,
    p: Site,
) -> Response:
    def delete() -> str:
        project = project_for(p, user, project_id, WORK)
        p.repos.projects.delete(project.id)
        return f"/organisations/{project.organisation_id}"

    return act(p, delete, lambda m, s: show(request, p, user, project_id, m, s))


def show(
    request: Request,
    p: Platform,
    user: User,
    project_id: str,
    error: str | None = None,
    status: int = 200,
) -> Response:
    project = project_for(p, user, project_id)
    role = membership_role(p, user, project.organisation_id)
    return render(
        request,
        "project.html",
        user=user,
        project=project,
        organisation=p.repos.organisations.get(project.organisation_id),
        resources=p.repos.projects.get_resources(project.id),
        statuses=list(ProjectStatus),
        resource_types=list(ResourceType),
        resource_statuses=list(ResourceStatus),
        may_work=role in WORK,
        error=error,
        status=status,
    )


def project_for(
    p: Platform, user: User, project_id: str, may: tuple[MembershipRole, ...] = SEE
) -> Project:
    """The project, if the user is a member of its organisation with a role in ``may``."""
    project = p.repos.projects.get(checked_id(project_id))
    if project is None:
        raise PageNotFound()
    organisation_for(p, user, project.organisation_id, may)
    return project
